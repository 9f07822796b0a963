import "dotenv/config";
import { parseSettings, SettingsError } from "../config/settings";
import { createNode } from "../node";
import { replCommands } from "./repl-commands";

async function main(): Promise<void> {
  const settings = parseSettings(process.env);
  // In a cluster the REPL joins as a node of its own without services; embedded, it is Shoal itself.
  const node = createNode(
    settings.mode === "cluster" ? { ...settings, services: [], nodeId: settings.nodeId ?? `repl-${process.pid}` } : settings,
  );
  node.broker.options.replCommands = replCommands;
  await node.start();
  await node.broker.repl();
}

main().catch((error: unknown) => {
  console.error(error instanceof SettingsError || error instanceof Error ? error.message : error);
  process.exit(error instanceof SettingsError ? 2 : 1);
});

import "dotenv/config";
import { parseSettings, SettingsError } from "./config/settings";
import type { Settings } from "./config/settings";
import { createNode } from "./node";

function loadSettings(): Settings {
  try {
    return parseSettings(process.env);
  } catch (error) {
    if (error instanceof SettingsError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const node = createNode(loadSettings());
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    node.broker.logger.info(`${signal} received, stopping`);
    node.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        node.broker.logger.error("stop failed", error);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  try {
    await node.start();
  } catch (error) {
    // Stopped while starting: the stop decides the exit code.
    if (!stopping) throw error;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});

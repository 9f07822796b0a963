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
  const settings = loadSettings();
  const node = createNode(settings);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      node.broker.logger.warn(`${signal} received again: stopping at once`);
      process.exit(1);
    }
    stopping = true;
    node.broker.logger.info(`${signal} received, stopping (at most ${settings.shutdownTimeoutSeconds} s for work in flight)`);
    // Past the drain and a little for the services themselves, stop regardless.
    setTimeout(() => {
      node.broker.logger.error("stopping took too long: exiting");
      process.exit(1);
    }, (settings.shutdownTimeoutSeconds + 10) * 1000).unref();
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

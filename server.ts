import "dotenv/config";
import { parseSettings, SettingsError } from "./config/settings";
import type { Settings } from "./config/settings";
import { onStopRequest, processIndex, reportProcessReady, settingsForProcess, superviseProcessGroup } from "./lib/ops/process-group";
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

/** NODE_PROCESSES > 1: this process only supervises the copies that serve. */
async function supervise(settings: Settings): Promise<never> {
  const log = {
    info: (message: string) => console.info(`[process group] ${message}`),
    error: (message: string) => console.error(`[process group] ${message}`),
  };
  log.info(`starting ${settings.processes} processes`);
  // Each process has the whole shutdown timeout; past it and a margin, the group is killed.
  const code = await superviseProcessGroup({ processes: settings.processes, stopTimeoutMs: (settings.shutdownTimeoutSeconds + 15) * 1000, log });
  process.exit(code);
}

async function main(): Promise<void> {
  const loaded = loadSettings();
  const index = processIndex();
  if (loaded.processes > 1 && index === undefined) await supervise(loaded);
  const settings = index === undefined ? loaded : settingsForProcess(loaded, index);
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
  // In a group, Ctrl-C reaches every process and the supervisor asks as well: one stop, not "again".
  onStopRequest(() => {
    if (!stopping) stop("stop request from the process group");
  });
  try {
    await node.start();
    reportProcessReady(node.port);
  } catch (error) {
    // Stopped while starting: the stop decides the exit code.
    if (!stopping) throw error;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});

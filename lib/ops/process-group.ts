import cluster from "node:cluster";
import type { Worker } from "node:cluster";
import type { Settings } from "../../config/settings";

/** Set in each process of a group: its place, from 0. */
export const PROCESS_INDEX_VARIABLE = "SHOAL_PROCESS_INDEX";

/** What a process of the group sends its supervisor. */
type ToSupervisor = { readonly shoalProcessReady: { readonly port: number | undefined } };
/** What the supervisor sends a process of the group. */
type ToProcess = { readonly shoalProcessStop: true };

/** The index of this process in its group; undefined when it runs alone. */
export function processIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(process.env[PROCESS_INDEX_VARIABLE]);
  return Number.isInteger(index) && index >= 0 ? index : undefined;
}

/**
 * One process's settings in a group: the node id and the metrics port are its own (each process is a node
 * of its own in the cluster, and Prometheus scrapes each one), everything else is shared.
 */
export function settingsForProcess(settings: Settings, index: number): Settings {
  return {
    ...settings,
    nodeId: settings.nodeId === undefined ? undefined : `${settings.nodeId}-${index}`,
    metrics: { ...settings.metrics, port: settings.metrics.port === undefined || settings.metrics.port === 0 ? settings.metrics.port : settings.metrics.port + index },
  };
}

/** Tells the supervisor, if any, that this process serves (on `port`, shared by the whole group). */
export function reportProcessReady(port: number | undefined): void {
  if (cluster.isWorker && process.send) process.send({ shoalProcessReady: { port } } satisfies ToSupervisor);
}

/** Calls `stop` when the supervisor asks this process to stop. */
export function onStopRequest(stop: () => void): void {
  if (!cluster.isWorker) return;
  process.on("message", (message: Partial<ToProcess> | undefined) => {
    if (message?.shoalProcessStop === true) stop();
  });
}

export interface ProcessGroupLog {
  info(message: string): void;
  error(message: string): void;
}

export interface ProcessGroupOptions {
  readonly processes: number;
  /** After asking the processes to stop, how long before they are killed. */
  readonly stopTimeoutMs: number;
  readonly log: ProcessGroupLog;
  /** Called once, when every process has served for the first time, with the port they share. */
  readonly onReady?: (port: number | undefined) => void;
  /** A process that dies is started again after this delay, doubled after each quick death (up to `maxRestartDelayMs`). */
  readonly restartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
}

/** A process that served this long before dying is restarted after the first delay again. */
const STEADY_MS = 60_000;

/**
 * Runs `processes` copies of this program as workers of Node's cluster module: they share the listening port
 * (the supervisor hands connections out in turn), so one node uses every core. The supervisor restarts a
 * process that dies, and on SIGTERM or SIGINT asks each to stop gracefully (a message, not a signal: a
 * Ctrl-C in a terminal already signals the whole process group, and a second signal means "at once").
 * Resolves with the exit code the supervisor should end with.
 */
export function superviseProcessGroup(options: ProcessGroupOptions): Promise<number> {
  const { log } = options;
  const firstDelay = options.restartDelayMs ?? 1000;
  const maxDelay = options.maxRestartDelayMs ?? 30_000;
  const workers = new Map<number, Worker>();
  const delays = new Map<number, number>();
  const startedAt = new Map<number, number>();
  const servedOnce = new Set<number>();
  const restartTimers = new Set<NodeJS.Timeout>();
  let stopping = false;
  let failed = false;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));

  const start = (index: number) => {
    const worker = cluster.fork({ [PROCESS_INDEX_VARIABLE]: String(index) });
    workers.set(index, worker);
    startedAt.set(index, Date.now());
    worker.on("message", (message: Partial<ToSupervisor> | undefined) => {
      const ready = message?.shoalProcessReady;
      if (ready === undefined || servedOnce.has(index)) return;
      servedOnce.add(index);
      if (servedOnce.size === options.processes) {
        log.info(`all ${options.processes} processes serve${ready.port === undefined ? "" : ` on port ${ready.port}`}`);
        options.onReady?.(ready.port);
      }
    });
    worker.on("exit", (code, signal) => {
      workers.delete(index);
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (stopping) {
        if (code !== 0) failed = true;
        if (workers.size === 0) finish(failed ? 1 : 0);
        return;
      }
      const lived = Date.now() - (startedAt.get(index) ?? 0);
      const delay = lived >= STEADY_MS ? firstDelay : Math.min(maxDelay, delays.get(index) ?? firstDelay);
      delays.set(index, Math.min(maxDelay, delay * 2));
      log.error(`process ${index} (pid ${worker.process.pid}) exited with ${how}; starting it again in ${delay} ms`);
      const timer = setTimeout(() => {
        restartTimers.delete(timer);
        if (!stopping) start(index);
      }, delay);
      restartTimers.add(timer);
    });
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.error(`${signal} received again: killing the processes`);
      for (const worker of workers.values()) worker.process.kill("SIGKILL");
      finish(1);
      return;
    }
    stopping = true;
    for (const timer of restartTimers) clearTimeout(timer);
    log.info(`${signal} received: stopping ${workers.size} processes`);
    if (workers.size === 0) finish(0);
    for (const worker of workers.values()) {
      // A process that is already gone cannot take the message; its exit settles it.
      if (worker.isConnected()) worker.send({ shoalProcessStop: true } satisfies ToProcess);
    }
    setTimeout(() => {
      if (workers.size === 0) return;
      log.error(`processes still running after ${options.stopTimeoutMs} ms: killing them`);
      for (const worker of workers.values()) worker.process.kill("SIGKILL");
      finish(1);
    }, options.stopTimeoutMs).unref();
  };

  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  for (let index = 0; index < options.processes; index++) start(index);
  return done;
}

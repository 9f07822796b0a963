/**
 * Runs server binaries as child processes that never outlive this process.
 *
 * Two mechanisms, because each misses cases the other covers:
 * - a process.on("exit") hook SIGKILLs every live child (normal exit, process.exit, uncaught exception);
 * - a small detached watchdog process holds the read end of a pipe from this process. When this process
 *   dies in any way (SIGKILL, a signal without handler, a jest worker torn down), the pipe closes and the
 *   watchdog SIGKILLs the children it was told about and deletes the registered temporary directories.
 *   Inside jest the test sandbox gets a copy of `process`, so the exit hook alone would not fire there.
 *   It runs only while it has something to watch: its handles would hold (in jest) the test file's modules.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Writable } from "node:stream";
import { freePort } from "./ports";

const WATCHDOG_SOURCE = `
const fs = require("fs");
const pids = new Set();
const dirs = new Set();
let pending = "";
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => {});
process.stdin.setEncoding("utf8");
process.stdin.on("data", (data) => {
  pending += data;
  let end;
  while ((end = pending.indexOf("\\n")) >= 0) {
    const line = pending.slice(0, end);
    pending = pending.slice(end + 1);
    const op = line[0];
    const kind = line.slice(2, 5);
    const value = line.slice(6);
    const set = kind === "pid" ? pids : dirs;
    const item = kind === "pid" ? Number(value) : value;
    if (op === "+") set.add(item);
    else set.delete(item);
  }
});
const alive = (pid) => {
  try { process.kill(pid, 0); return true; } catch (error) { return error.code === "EPERM"; }
};
let cleaning = false;
function cleanUp() {
  if (cleaning) return;
  cleaning = true;
  for (const pid of pids) { try { process.kill(pid, "SIGKILL"); } catch {} }
  const deadline = Date.now() + 10000;
  const finish = () => {
    if ([...pids].some(alive) && Date.now() < deadline) return void setTimeout(finish, 50);
    for (const dir of dirs) { try { fs.rmSync(dir, { recursive: true, force: true }); } catch {} }
    process.exit(0);
  };
  finish();
}
process.stdin.on("end", cleanUp);
process.stdin.on("error", cleanUp);
`;

const liveChildren = new Set<ChildProcess>();
let watchdogInput: Writable | undefined;
/** What the watchdog has been told to clean up ("pid 123", "dir /tmp/x") and not yet told to forget. */
const watched = new Set<string>();
let exitHookInstalled = false;

function killLiveChildren(): void {
  for (const child of liveChildren) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

function watchdog(): Writable | undefined {
  if (watchdogInput !== undefined) return watchdogInput;
  // Without NODE_OPTIONS: an inherited --inspect or loader would make the watchdog fail to start.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ["-e", WATCHDOG_SOURCE], {
    stdio: ["pipe", "ignore", "ignore"],
    detached: true,
    env,
  });
  const input = child.stdin;
  child.on("error", () => {
    if (watchdogInput === input) watchdogInput = undefined;
  });
  child.unref();
  if (input === null) return undefined;
  input.on("error", () => {
    // the watchdog died; the exit hook still covers normal exits
  });
  if (input instanceof net.Socket) input.unref();
  watchdogInput = input;
  return input;
}

function tellWatchdog(op: "+" | "-", item: string): void {
  if (op === "+") watched.add(item);
  else if (!watched.delete(item)) return;
  (op === "+" ? watchdog() : watchdogInput)?.write(`${op} ${item}\n`);
  if (watched.size > 0) return;
  // Nothing left to clean up: the watchdog sees its input end and exits; the next item starts another.
  watchdogInput?.end();
  watchdogInput = undefined;
}

function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    process.on("exit", killLiveChildren);
    exitHookInstalled = true;
  }
  const pid = child.pid;
  if (pid === undefined) return;
  liveChildren.add(child);
  tellWatchdog("+", `pid ${pid}`);
  child.once("exit", () => {
    liveChildren.delete(child);
    tellWatchdog("-", `pid ${pid}`);
  });
}

/** Deletes the directory when this process ends, should nobody have deleted it before. */
export function deleteDirectoryWhenProcessEnds(dir: string): void {
  tellWatchdog("+", `dir ${dir}`);
}

export async function removeDirectory(dir: string): Promise<void> {
  await fs.promises.rm(dir, { recursive: true, force: true, maxRetries: 3 });
  tellWatchdog("-", `dir ${dir}`);
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * The last lines of each existing, non-empty file, headed by its path; with `fromOffsets`, only of
 * what was written to each file after that offset.
 */
export function tailOfFiles(files: readonly string[], maxLines = 25, fromOffsets?: ReadonlyMap<string, number>): string {
  const sections: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      const size = fs.statSync(file).size;
      const start = Math.max(fromOffsets?.get(file) ?? 0, size - 16 * 1024, 0);
      const buffer = Buffer.alloc(size - start);
      const fd = fs.openSync(file, "r");
      try {
        fs.readSync(fd, buffer, 0, buffer.length, start);
      } finally {
        fs.closeSync(fd);
      }
      text = buffer.toString("utf8");
    } catch {
      continue;
    }
    const lines = text.split("\n").filter((line) => line.trim() !== "");
    if (lines.length === 0) continue;
    sections.push(`--- last lines of ${file} ---\n${lines.slice(-maxLines).join("\n")}`);
  }
  return sections.join("\n");
}

export class ServerStartError extends Error {
  constructor(
    message: string,
    /** The server could not bind its port: starting again on another port may work. */
    readonly addressInUse: boolean,
  ) {
    super(message);
    this.name = "ServerStartError";
  }
}

export interface ServerProcessOptions {
  /** Names the server in errors, e.g. "mariadb replica-1". */
  readonly label: string;
  readonly command: string;
  /** Asked at every start, so that a retry on another port gets new arguments. */
  readonly args: () => readonly string[];
  /** stdout and stderr of the server are appended here. */
  readonly outputFile: string;
  /** Log files the server writes itself, shown when it fails. */
  readonly logFiles?: readonly string[];
  /** Resolves once the server answers a real request; a rejection means "not yet". */
  readonly probe: (pid: number) => Promise<void>;
  readonly readyTimeoutMs?: number;
  readonly stopTimeoutMs?: number;
  /** The server's environment (default: this process's); asked at every start, like `args`. */
  readonly env?: () => NodeJS.ProcessEnv;
  /** The server's working directory (default: this process's). */
  readonly cwd?: string;
}

type Exit = { code: number | null; signal: NodeJS.Signals | null } | { error: Error };

function describeExit(exit: Exit): string {
  if ("error" in exit) return `could not be run (${exit.error.message})`;
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** One server child process that can be stopped and started again with the same arguments. */
export class ServerProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<Exit> | undefined;
  /** Where each log file ended when the current start began, so errors show only this attempt. */
  private logOffsets = new Map<string, number>();

  constructor(private readonly options: ServerProcessOptions) {}

  get pid(): number | undefined {
    return this.isRunning() ? this.child?.pid : undefined;
  }

  isRunning(): boolean {
    const child = this.child;
    return child !== undefined && child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Starts the server unless it runs; resolves once the probe succeeds. */
  async start(): Promise<void> {
    if (this.isRunning()) return;
    const { command, outputFile, probe, label } = this.options;
    const readyTimeoutMs = this.options.readyTimeoutMs ?? 30_000;
    this.logOffsets = new Map(this.logFiles().map((file) => [file, fileSize(file)]));
    const output = fs.openSync(outputFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(command, [...this.options.args()], {
        stdio: ["ignore", output, output],
        env: this.options.env?.(),
        cwd: this.options.cwd,
      });
    } finally {
      fs.closeSync(output);
    }
    const exit = new Promise<Exit>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      child.once("error", (error) => resolve({ error }));
    });
    this.child = child;
    this.exit = exit;
    track(child);
    child.unref();

    const deadline = Date.now() + readyTimeoutMs;
    let lastProbeError: unknown;
    for (;;) {
      const pid = child.pid;
      const outcome = await Promise.race([
        exit.then((exited) => ({ exited })),
        pid === undefined
          ? new Promise<never>(() => {})
          : probe(pid).then(
              () => ({ ready: true as const }),
              (error: unknown) => ({ ready: false as const, error }),
            ),
      ]);
      if ("exited" in outcome) {
        throw this.startError(`${label} ${describeExit(outcome.exited)} before it was ready`, true);
      }
      if (outcome.ready) return;
      lastProbeError = outcome.error;
      if (Date.now() >= deadline) {
        await this.kill();
        const reason = lastProbeError instanceof Error ? lastProbeError.message : String(lastProbeError);
        throw this.startError(`${label} was not ready within ${readyTimeoutMs} ms (last probe: ${reason})`, false);
      }
      await delay(50);
    }
  }

  /** SIGTERM, then SIGKILL after the stop timeout; resolves when the process has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    const exit = this.exit;
    if (child === undefined || exit === undefined || !this.isRunning()) return;
    child.kill("SIGTERM");
    const stopTimeoutMs = this.options.stopTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exit.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), stopTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) await this.kill();
  }

  /** Sends the signal (default SIGKILL); resolves when the process has exited. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.child === undefined || this.exit === undefined || !this.isRunning()) return;
    this.child.kill(signal);
    await this.exit;
  }

  private logFiles(): string[] {
    return [this.options.outputFile, ...(this.options.logFiles ?? [])];
  }

  private startError(message: string, exited: boolean): ServerStartError {
    const tail = tailOfFiles(this.logFiles(), 25, this.logOffsets);
    const addressInUse = exited && /address already in use/i.test(tail);
    return new ServerStartError(tail === "" ? message : `${message}\n${tail}`, addressInUse);
  }
}

/**
 * Runs `attempt` on a free port, and again on another one when the server could not bind it because
 * something took the port between freePort() and the server's bind.
 */
export async function onFreePort<T>(
  freePort: () => Promise<number>,
  attempt: (port: number) => Promise<T>,
  attempts = 4,
): Promise<T> {
  for (let remaining = attempts; ; remaining--) {
    try {
      return await attempt(await freePort());
    } catch (error) {
      if (!(error instanceof ServerStartError && error.addressInUse) || remaining <= 1) throw error;
    }
  }
}

/** A server binary on a private 127.0.0.1 port, in a temporary directory of its own (Redis, NATS). */
export interface PrivateServer {
  /** <scheme>://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The server's process id while it runs. */
  readonly pid: number | undefined;
  /** Starts it again on the same port after stop(). */
  start(): Promise<void>;
  stop(): Promise<void>;
  isRunning(): boolean;
  /** Stops the server and deletes its directory. */
  dispose(): Promise<void>;
}

export interface PrivateServerOptions {
  /** Parent of the server's own temporary directory (default os.tmpdir()). */
  readonly baseDir?: string;
}

/**
 * Makes the server's directory, starts it on a free port (another one if the port was taken before the
 * server could bind it), and answers its handle. `serverFor` gets the directory and the port to use.
 */
export async function startPrivateServer(
  name: string,
  scheme: string,
  options: PrivateServerOptions,
  serverFor: (dir: string, port: () => number) => ServerProcess,
): Promise<PrivateServer> {
  const dir = await fs.promises.mkdtemp(path.join(options.baseDir ?? os.tmpdir(), `shoal-${name}-`));
  deleteDirectoryWhenProcessEnds(dir);
  let port = 0;
  const server = serverFor(dir, () => port);
  try {
    await onFreePort(freePort, async (candidate) => {
      port = candidate;
      await server.start();
    });
  } catch (error) {
    await removeDirectory(dir).catch(() => undefined);
    throw error;
  }
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return server.pid;
    },
    start: () => server.start(),
    stop: () => server.stop(),
    isRunning: () => server.isRunning(),
    dispose: async () => {
      await server.stop();
      await removeDirectory(dir);
    },
  };
}

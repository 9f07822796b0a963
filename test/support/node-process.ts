/**
 * A real Shoal node in a CHILD process (`node --import tsx server.ts`), for tests that need to
 * kill a node the hard way (SIGKILL: no `stopped()` hooks, no NATS goodbye, no ack).
 *
 *   const worker = await startNodeProcess({ ...envFor(services), NODE_ID: "worker-1", SERVICES: "processing" });
 *   worker.descendants();            // its child processes (ffmpeg, ffprobe) as { pid, argv }
 *   await worker.kill("SIGKILL");    // the node and everything it spawned (its process group)
 *   await stopAllNodeProcesses();    // afterAll: SIGTERM, then SIGKILL whoever is left
 *
 * The child runs in its own process group (detached), so a kill reaches its ffmpeg children too
 * and nothing outlives the test. Its stdout and stderr are kept for assertions and diagnostics.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const ROOT = path.resolve(__dirname, "../..");
/** The node's line once its HTTP port is bound, before its services start; group 1 is the port. */
export const LISTENING = /HTTP on http:\/\/localhost:(\d+)/;

/** Moleculer's line once every local service has started. */
const STARTED = /ServiceBroker with \d+ service\(s\) started successfully/;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ProcessInfo {
  readonly pid: number;
  readonly argv: readonly string[];
}

export interface NodeProcess {
  readonly pid: number;
  readonly name: string;
  /** Everything the node wrote so far (stdout and stderr, interleaved as received). */
  output(): string;
  /** Whether the process is still running. */
  readonly alive: boolean;
  /** Settles when the process has exited. */
  readonly exited: Promise<Exit>;
  /** Resolves when the output matches (already or later); rejects on timeout or exit. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Processes below this one (children, grandchildren), read from /proc. */
  descendants(): ProcessInfo[];
  /** Sends the signal to the whole process group and waits for the node to exit. */
  kill(signal?: NodeJS.Signals): Promise<Exit>;
  /** SIGTERM (a graceful stop), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<Exit>;
}

const running = new Set<NodeProcess>();

function readProc(pid: string): { ppid: number; argv: string[] } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // pid (comm) state ppid ...: comm may contain spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((part) => part !== "");
    return { ppid: Number(fields[1]), argv };
  } catch {
    return undefined; // gone meanwhile, or not ours to read
  }
}

/** All processes descending from `root`, by walking /proc (Linux). */
export function descendantsOf(root: number): ProcessInfo[] {
  const table = new Map<number, { ppid: number; argv: string[] }>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const info = readProc(entry);
    if (info) table.set(Number(entry), info);
  }
  const found: ProcessInfo[] = [];
  const parents = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, info] of table) {
      if (parents.has(info.ppid) && !parents.has(pid)) {
        parents.add(pid);
        found.push({ pid, argv: info.argv });
        grew = true;
      }
    }
  }
  return found;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * Starts `node --import tsx server.ts` with this environment (on top of the test process's) and
 * waits until its broker has started (or until it prints `waitFor`, e.g. LISTENING). LOG_LEVEL defaults to info, so the node's job and
 * reconciler lines can be asserted on.
 */
export async function startNodeProcess(
  env: Record<string, string>,
  options: { startTimeoutMs?: number; waitFor?: RegExp } = {},
): Promise<NodeProcess> {
  const name = env.NODE_ID ?? "node";
  const child = spawn(process.execPath, ["--import", "tsx", "server.ts"], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "info", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  if (child.pid === undefined) {
    throw new Error(`${name}: could not start node (${process.execPath})`);
  }
  const pid = child.pid;
  let output = "";
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    for (const listener of listeners) listener();
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      for (const listener of listeners) listener();
      resolve(exit);
    });
  });

  const waitForOutput = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(output)) finish();
        else if (exit) finish(new Error(`${name} exited (${exit.code ?? exit.signal}) before printing ${pattern}; its output:\n${output}`));
      };
      const timer = setTimeout(() => finish(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms; its output:\n${output}`)), timeoutMs);
      function finish(error?: Error) {
        clearTimeout(timer);
        listeners.delete(check);
        if (error) reject(error);
        else resolve();
      }
      listeners.add(check);
      check();
    });

  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    signalGroup(child, signal);
    const result = await exited;
    // Whatever the node had spawned (ffmpeg) goes with it.
    signalGroup(child, "SIGKILL");
    return result;
  };

  const handle: NodeProcess = {
    pid,
    name,
    output: () => output,
    get alive() {
      return exit === undefined;
    },
    exited,
    waitForOutput,
    descendants: () => descendantsOf(pid),
    kill,
    async stop(graceMs = 10_000) {
      if (exit) {
        signalGroup(child, "SIGKILL");
        return exit;
      }
      child.kill("SIGTERM");
      const timer = setTimeout(() => signalGroup(child, "SIGKILL"), graceMs);
      const result = await exited;
      clearTimeout(timer);
      signalGroup(child, "SIGKILL");
      return result;
    },
  };
  running.add(handle);
  void exited.then(() => running.delete(handle));

  try {
    await waitForOutput(options.waitFor ?? STARTED, options.startTimeoutMs ?? 60_000);
  } catch (error) {
    await handle.stop(1000);
    throw error;
  }
  return handle;
}

/** Stops every child node still running (afterAll). */
export async function stopAllNodeProcesses(): Promise<void> {
  await Promise.all([...running].map((node) => node.stop()));
}

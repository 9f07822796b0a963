/**
 * The benchmarks' child processes, seen from the parent: each a Node process running a bench script with
 * tsx, with only the environment the benchmark gives it. A child talks back either with JSON lines on its
 * stdout (`{"<key>":…}`, bench/harness/shoal-node.ts and bench/process-direct.ts; the parent writes to its stdin,
 * and closing that tells it to stop) or over Node's IPC channel (`{type, …}` messages: bench/upload-server.ts,
 * bench/auth-server.ts, bench/harness/services.ts). Its other output is kept (the last 40 lines) for error messages.
 * Every child still running when the parent exits is killed.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { PROJECT_ROOT, delay, progress } from "./common";
import type { BenchAnswer, BenchCommand, ReadyLine } from "./shoal-node";
import type { ServicesReady } from "./services";

const liveChildren = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});

/** Only what a Node process needs: settings come from the benchmark, never from the caller's shell. */
export function baseEnv(extraNames: readonly string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "TMPDIR", "LANG", "TZ", ...extraNames]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

export interface ChildOptions {
  /** "lines": JSON lines on stdout, commands on stdin; "ipc": Node's IPC channel (stdin closed). */
  readonly channel: "lines" | "ipc";
  readonly nodeFlags?: readonly string[];
  /** From SIGTERM to SIGKILL in stop(). */
  readonly stopTimeoutMs: number;
  /** Names of the parent's environment passed on besides baseEnv()'s. */
  readonly passEnv?: readonly string[];
  /** Called when the child ends without stop() having been called. */
  readonly onUnexpectedExit?: (label: string, how: string, tail: string) => void;
}

type Message = { readonly type: string };

/** One child process; M: the IPC messages it sends. */
export class BenchChild<M extends Message = Message> {
  readonly pid: number;
  readonly exited: Promise<string>;
  private readonly process: ChildProcess;
  private readonly lastLines: string[] = [];
  private readonly lineListeners = new Map<string, (value: unknown) => void>();
  private readonly waiting = new Map<M["type"], (message: M) => void>();
  private stopping: Promise<void> | undefined;

  constructor(
    readonly label: string,
    script: string,
    env: Record<string, string>,
    private readonly options: ChildOptions,
  ) {
    this.process = spawn(process.execPath, [...(options.nodeFlags ?? []), "--import", "tsx", script], {
      cwd: PROJECT_ROOT,
      env: { ...baseEnv(options.passEnv), ...env },
      stdio: options.channel === "ipc" ? ["ignore", "pipe", "pipe", "ipc"] : ["pipe", "pipe", "pipe"],
    });
    const child = this.process;
    if (child.pid === undefined) throw new Error(`${label} could not be started`);
    this.pid = child.pid;
    liveChildren.add(child);
    this.exited = new Promise((resolve) => {
      child.once("error", (error) => resolve(`could not be run: ${error.message}`));
      child.once("exit", (code, signal) => resolve(signal !== null ? `killed by ${signal}` : `exit code ${code}`));
    });
    void this.exited.then((how) => {
      liveChildren.delete(child);
      if (this.stopping === undefined) options.onUnexpectedExit?.(label, how, this.tail());
    });
    child.stdin?.on("error", () => undefined);
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      readline.createInterface({ input: stream }).on("line", (line) => {
        const key = /^\{"(\w+)":/.exec(line)?.[1];
        const listener = key === undefined ? undefined : this.lineListeners.get(key);
        if (key !== undefined && listener !== undefined) {
          listener((JSON.parse(line) as Record<string, unknown>)[key]);
          return;
        }
        this.lastLines.push(line);
        if (this.lastLines.length > 40) this.lastLines.shift();
      });
    }
    child.on("message", (message: M) => {
      const resolve = this.waiting.get(message.type);
      this.waiting.delete(message.type);
      resolve?.(message);
    });
  }

  /** Calls `listener` with the value of every `{"<key>":…}` line of output (such lines are not kept for the tail). */
  on(key: string, listener: (value: unknown) => void): void {
    this.lineListeners.set(key, listener);
  }

  /** The value of the first `{"<key>":…}` line, or an error naming the child's last output if it ends or times out first. */
  firstLine<T>(key: string, timeoutMs: number): Promise<T> {
    return this.settle(`gave no answer within ${timeoutMs / 1000} s`, "before answering", timeoutMs, (resolve) => this.on(key, (value) => resolve(value as T)));
  }

  /** The next IPC message of `type`, or an error naming the child's last output if it ends or times out first. */
  next<T extends M["type"]>(type: T, timeoutMs: number): Promise<Extract<M, { type: T }>> {
    return this.settle(`sent no "${type}" within ${timeoutMs / 1000} s`, `while waiting for "${type}"`, timeoutMs, (resolve) =>
      this.waiting.set(type, (message) => resolve(message as Extract<M, { type: T }>)),
    );
  }

  /** Sends an IPC message and waits for the answer of the same type. */
  async ask<T extends M["type"]>(message: { readonly type: T }, timeoutMs = 10_000): Promise<Extract<M, { type: T }>> {
    const answer = this.next(message.type, timeoutMs);
    this.process.send(message);
    return answer;
  }

  /** Writes one line to the child's stdin (channel "lines"). */
  writeLine(line: string): void {
    this.process.stdin?.write(`${line}\n`);
  }

  /** SIGTERM, then SIGKILL after the stop timeout; once. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.process.exitCode !== null || this.process.signalCode !== null) return;
      this.process.kill("SIGTERM");
      const stopped = await Promise.race([this.exited.then(() => true), delay(this.options.stopTimeoutMs).then(() => false)]);
      if (!stopped) {
        this.process.kill("SIGKILL");
        await this.exited;
      }
    })();
    return this.stopping;
  }

  /** The child's last lines of output, for error messages. */
  tail(): string {
    return this.lastLines.length > 0 ? `\n--- last output of ${this.label} ---\n${this.lastLines.join("\n")}` : "";
  }

  /** An error about this child, with its last output. */
  failure(what: string): Error {
    return new Error(`${this.label} ${what}${this.tail()}`);
  }

  private settle<T>(timeoutText: string, endedText: string, timeoutMs: number, listen: (resolve: (value: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(this.failure(timeoutText)), timeoutMs);
      listen((value) => {
        clearTimeout(timer);
        resolve(value);
      });
      void this.exited.then((how) => {
        clearTimeout(timer);
        reject(this.failure(`ended (${how}) ${endedText}`));
      });
    });
  }
}

/**
 * A Shoal node (or the raw server) of bench/harness/shoal-node.ts: `ready` once it listens, `stats` from its
 * `benchStats` line on the way out, and commands to a node started with BENCH_DEFER_SUBSCRIBE=1.
 */
export class ShoalChild extends BenchChild {
  readonly ready: Promise<ReadyLine>;
  private stats: unknown;
  /** Who waits for the answer to a command, by command name, oldest first. */
  private readonly answers = new Map<string, Array<(answer: BenchAnswer) => void>>();

  constructor(label: string, env: Record<string, string>, options: { startTimeoutMs: number; stopTimeoutMs: number; nodeFlags?: readonly string[] }) {
    super(label, path.join(__dirname, "shoal-node.ts"), env, { channel: "lines", ...options });
    this.ready = this.firstLine<ReadyLine>("benchReady", options.startTimeoutMs);
    this.on("benchStats", (value) => {
      this.stats = value;
    });
    this.on("benchAnswer", (value) => {
      const answer = value as BenchAnswer;
      this.answers.get(answer.name)?.shift()?.(answer);
    });
  }

  /** Stops the node; resolves with what it reported on the way out (`benchStats`). */
  async stopAndReport(): Promise<unknown> {
    await this.stop();
    await delay(50); // let the last stdout lines be read
    return this.stats;
  }

  /** Sends a command to a node started with BENCH_DEFER_SUBSCRIBE=1 and waits for its answer. */
  command(command: BenchCommand, timeoutMs: number): Promise<BenchAnswer> {
    return new Promise<BenchAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(this.failure(`did not answer ${command.name} within ${timeoutMs / 1000} s`)), timeoutMs);
      const waiting = this.answers.get(command.name) ?? [];
      waiting.push((answer) => {
        clearTimeout(timer);
        if (answer.error === undefined) resolve(answer);
        else reject(this.failure(`${command.name} failed: ${answer.error}`));
      });
      this.answers.set(command.name, waiting);
      this.writeLine(JSON.stringify({ benchCommand: command }));
    });
  }
}

/**
 * Starts the private cluster services (bench/harness/services.ts) in a child process; `ready` resolves once they run.
 * With watchWindow, the child also answers {type:"reset"} and {type:"report"} (bench/upload-window.ts).
 */
export function startServicesChild<M extends Message = ServicesReady>(options: {
  readonly replicas: 0 | 1;
  readonly watchWindow: boolean;
  readonly startTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly onUnexpectedExit?: (label: string, how: string, tail: string) => void;
}): { child: BenchChild<M | ServicesReady>; ready: Promise<ServicesReady> } {
  const env = { BENCH_MARIADB_REPLICAS: String(options.replicas), ...(options.watchWindow ? { BENCH_WATCH_WINDOW: "1" } : {}) };
  const child = new BenchChild<M | ServicesReady>("private services", path.join(__dirname, "services.ts"), env, {
    channel: "ipc",
    stopTimeoutMs: options.stopTimeoutMs,
    onUnexpectedExit: options.onUnexpectedExit,
  });
  return { child, ready: child.next("services", options.startTimeoutMs) as Promise<ServicesReady> };
}

/**
 * Polls GET /api/health until it answers 200 with status "ok"; resolves with that status. With
 * acceptAfterMs, a node answering 200 with another status (degraded: a replica not yet in rotation) is
 * taken after that long, with a warning.
 */
export async function waitForHealth(
  scope: string,
  label: string,
  baseUrl: string,
  timeoutMs: number,
  acceptAfterMs?: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let okDeadline: number | undefined;
  let last = "no answer";
  for (;;) {
    try {
      const response = await fetch(`${baseUrl}/api/health`, { signal: AbortSignal.timeout(3000) });
      const body = (await response.json()) as { status?: string };
      last = `${response.status} ${body.status ?? "?"}`;
      if (response.status === 200) {
        if (body.status === "ok") return "ok";
        if (acceptAfterMs !== undefined) {
          okDeadline ??= Date.now() + acceptAfterMs;
          if (Date.now() > okDeadline) {
            progress(scope, `warning: ${label} is still ${body.status} after ${acceptAfterMs / 1000} s; measuring anyway`);
            return body.status ?? "unknown";
          }
        }
      }
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      throw new Error(`${label}: /api/health not ${acceptAfterMs === undefined ? "200 ok" : "200"} within ${timeoutMs / 1000} s (last: ${last})`);
    }
    await delay(200);
  }
}

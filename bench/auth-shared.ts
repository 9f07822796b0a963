/** The sign-in benchmark's settings, figures and server child (bench/auth.ts). */
import { spawn } from "node:child_process";
import path from "node:path";
import type { IntervalHistogram, RecordableHistogram } from "node:perf_hooks";
import type { FromServer, LoopReport } from "./auth-protocol";
import type { BenchChild } from "./harness/children";
import { baseEnv } from "./harness/children";
import { PROJECT_ROOT, numberFromEnv, outputFromEnv, round, stamped } from "./harness/common";

export const SERVER_SCRIPT = path.join(__dirname, "auth-server.ts");
export const USER_CREATE_SCRIPT = path.join(PROJECT_ROOT, "scripts", "user-create.ts");
export const SIGN_IN_CONNECTIONS = 8;
export const CONCURRENT_SIGN_INS = 20;
export const GOAL_READ_P99_MS = 50;
export const START_TIMEOUT_MS = 120_000;
export const STOP_TIMEOUT_MS = 15_000;
export const READ_TIMEOUT_MS = 10_000;
/** Time for the 20 sign-ins to be in flight before the reads of the loaded round start. */
export const RAMP_MS = 500;
/**
 * Sign-ins go round-robin over this many accounts, as many different people signing in would: more
 * than 10 at once for one account hit its failed-sign-in allowance (attempts count until verified).
 */
export const ACCOUNTS = CONCURRENT_SIGN_INS;
export const PASSWORD = "bench sign-in passphrase 7f3c";
export const accountName = (index: number): string => `benchauth${index}`;

export interface Options {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly readRate: number;
  readonly output: string;
}

export interface Latency {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export interface SignInFigures {
  readonly requestsPerSecond: number;
  readonly latencyMs: Omit<Latency, "p90">;
  readonly requests: number;
  readonly durationSeconds: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly statusCodes?: Readonly<Record<string, number>>;
}

export interface ReadFigures {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  readonly mismatches: number;
  readonly latencyMs: Latency;
}

/** What the machine did during one measured window. */
export interface WindowFigures {
  readonly serverLoop: LoopReport;
  /** The load generator's own event-loop delay: a high figure here would mean the client, not the server, is late. */
  readonly clientLoopDelayMs: Latency;
  /**
   * CPU seconds per second of window (2 would be both cores of a 2-core machine), from os.cpus(): the
   * server child, this process, and everything else (other work on the machine skews the figures).
   */
  readonly cpuSecondsPerSecond: { readonly server: number; readonly client: number; readonly otherProcesses: number };
  readonly loadAverage1mBefore: number;
}

export interface Round extends WindowFigures {
  readonly read: ReadFigures;
}

// ---------------------------------------------------------------------------------------------
// Small functions

export function readOptions(): Options {
  const seconds = numberFromEnv("BENCH_SECONDS", 10);
  return {
    seconds,
    warmupSeconds: Math.min(numberFromEnv("BENCH_WARMUP_SECONDS", 2), seconds),
    readRate: numberFromEnv("BENCH_READ_RATE", 200),
    output: outputFromEnv("auth"),
  };
}

export const progress = stamped;

/** Percentiles of a histogram of nanoseconds, in milliseconds, less `offsetMs` (an event-loop monitor's resolution). */
export function latencyOf(histogram: RecordableHistogram | IntervalHistogram, offsetMs = 0): Latency {
  const ms = (ns: number) => round(Math.max(0, ns / 1e6 - offsetMs), 2);
  return {
    p50: ms(histogram.percentile(50)),
    p90: ms(histogram.percentile(90)),
    p99: ms(histogram.percentile(99)),
    max: ms(histogram.max),
    mean: ms(histogram.count > 0 ? histogram.mean : 0),
  };
}

// ---------------------------------------------------------------------------------------------
// The server child

/** UV_THREADPOOL_SIZE is passed on to the server (argon2 runs on libuv's thread pool). */
export const PASS_ENV = ["UV_THREADPOOL_SIZE"];

export type ServerChild = BenchChild<FromServer>;

/** Creates an account with the operator command, on the data directory of the running server; resolves with its id. */
export function createAccountWithCommand(dataDir: string, username: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", USER_CREATE_SCRIPT, "--username", username, "--email", `${username}@example.test`, "--password-stdin"],
      { cwd: PROJECT_ROOT, env: { ...baseEnv(PASS_ENV), SHOAL_MODE: "embedded", SHOAL_DATA_DIR: dataDir }, stdio: ["pipe", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.once("error", reject);
    child.once("close", (code) => {
      const id = /\(id ([0-9A-Z]{26})\)/.exec(output)?.[1];
      if (code === 0 && id !== undefined) resolve(id);
      else reject(new Error(`user-create exited with ${code}: ${output.trim()}`));
    });
    child.stdin.end(`${PASSWORD}\n`);
  });
}

/** Signs up through the API (POST /api/auth/register). */

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import type autocannon from "autocannon";

/**
 * What every benchmark shares: rounding, env options, progress lines, a record of the machine and code
 * measured, CPU time from /proc, and (for the children) stopping once and serving on a port.
 */
export const PROJECT_ROOT = path.resolve(__dirname, "../..");

export const round = (value: number, digits: number): number => Number(value.toFixed(digits));

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

export const loadAverage1m = (): number => round(os.loadavg()[0] ?? 0, 2);

/** `[hh:mm:ss] message` on stdout. */
export function stamped(message: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
}

/** `[hh:mm:ss] [scope] message` on stdout. */
export function progress(scope: string, message: string): void {
  stamped(`[${scope}] ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Options from the environment

/** A number from the environment: positive (or with allowZero, non-negative), and with integer, whole. */
export function numberFromEnv(name: string, fallback: number, { allowZero = false, integer = false } = {}): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero) || (integer && !Number.isInteger(value))) {
    throw new Error(`${name} must be a ${allowZero ? "non-negative" : "positive"} ${integer ? "integer" : "number"} (got ${JSON.stringify(raw)})`);
  }
  return value;
}

export type Mode = "embedded" | "cluster";

/** BENCH_MODES: which modes to run, in that order (default both). */
export function modesFromEnv(): Mode[] {
  const modes = (process.env.BENCH_MODES ?? "embedded,cluster")
    .split(",")
    .map((mode) => mode.trim())
    .filter((mode) => mode !== "");
  for (const mode of modes) {
    if (mode !== "embedded" && mode !== "cluster") throw new Error(`BENCH_MODES: unknown mode ${JSON.stringify(mode)}`);
  }
  return modes as Mode[];
}

/** BENCH_OUTPUT, or bench/results/<name>.json; relative paths are taken from the project root. */
export function outputFromEnv(name: string): string {
  return path.resolve(PROJECT_ROOT, process.env.BENCH_OUTPUT ?? `bench/results/${name}.json`);
}

/** BENCH_CPU_PROF_DIR, resolved; undefined when unset or empty. */
export function cpuProfDirFromEnv(): string | undefined {
  const dir = process.env.BENCH_CPU_PROF_DIR?.trim();
  return dir === undefined || dir === "" ? undefined : path.resolve(dir);
}

/**
 * Things to release at the end of a mode, or on error or interrupt; last added is released first. An interrupt
 * and the failure it causes both release: they share one pass, so neither finishes while the other still works.
 */
export class Resources {
  private readonly stack: Array<{ label: string; release: () => Promise<unknown> }> = [];
  private releasing: Promise<void> | undefined;

  add(label: string, release: () => Promise<unknown>): void {
    this.stack.push({ label, release });
  }

  releaseAll(): Promise<void> {
    this.releasing ??= (async () => {
      for (let entry = this.stack.pop(); entry !== undefined; entry = this.stack.pop()) {
        try {
          await entry.release();
        } catch (error) {
          console.error(`could not stop ${entry.label}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })().finally(() => {
      this.releasing = undefined;
    });
    return this.releasing;
  }
}

/** An autocannon result's responses by status code. */
export function statusCounts(result: autocannon.Result): Record<string, number> {
  return Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, stats]) => [status, stats.count ?? 0]));
}

// ---------------------------------------------------------------------------------------------
// The record of what was measured where

/** The commit measured and how many files differed from it (a dirty tree is worth knowing about). */
export function codeState(): { commit: string; changedFiles: number } | undefined {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: PROJECT_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const changed = git("status", "--porcelain").split("\n").filter((line) => line.trim() !== "");
    return { commit: git("rev-parse", "HEAD").trim(), changedFiles: changed.length };
  } catch {
    return undefined;
  }
}

export type MachineInfo = ReturnType<typeof machineInfo>;

/** The machine, for the results file: the same benchmark on another machine is another figure. */
export function machineInfo() {
  const cpus = os.cpus();
  return {
    node: process.version,
    cpuModel: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    totalMemoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((value) => round(value, 2)),
  };
}

/**
 * The start of a run: the machine, the date and the code measured (taken now: the children load the code as it
 * is now, even if the tree changes during the run). Prints the machine (with showLoad, its load averages) and
 * the run's settings, and warns when the 1-minute load average is above half the cores.
 */
export function startRun(settings: string, { showLoad = false } = {}): { machine: MachineInfo; date: string; code: ReturnType<typeof codeState> } {
  const machine = machineInfo();
  const date = new Date().toISOString();
  const code = codeState();
  progress("bench", `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}${showLoad ? `, load ${machine.loadAverageAtStart.join(" ")}` : ""}`);
  progress("bench", settings);
  const busy = machine.loadAverageAtStart[0] ?? 0;
  if (busy > machine.cores / 2) {
    progress("bench", `warning: 1-minute load average is ${busy} on ${machine.cores} cores; other work on this machine skews the figures`);
  }
  return { machine, date, code };
}

/** The installed version of a package in node_modules. */
/** POST /api/auth/register for a benchmark account; answers its token and id. */
export async function registerAccount(baseUrl: string, username: string, password: string): Promise<{ token: string; userId: string }> {
  const response = await fetch(`${baseUrl}/api/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, email: `${username}@example.test`, password }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`registering ${username}: ${response.status} ${text}`);
  const body = JSON.parse(text) as { token: string; user: { id: string } };
  return { token: body.token, userId: body.user.id };
}

export function packageVersion(name: string): string {
  const manifest = path.join(PROJECT_ROOT, "node_modules", name, "package.json");
  return (JSON.parse(fs.readFileSync(manifest, "utf8")) as { version: string }).version;
}

/** Writes the results file (and its directory). */
export function writeReport(output: string, report: unknown): void {
  fs.mkdirSync(path.dirname(output), { recursive: true });
  fs.writeFileSync(output, `${JSON.stringify(report, null, 2)}\n`);
}

/** The last line of a benchmark: where the results went. */
export function printWrittenTo(output: string): void {
  console.log(`\nwritten to ${path.relative(process.cwd(), output) || output}`);
}

/** Prints an error (its stack where there is one) and exits 1. */
export function exitWithError(error: unknown): never {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
}

let interruptedBySignal = false;

/** Whether SIGINT or SIGTERM came (after stopOnInterrupt()). */
export const interrupted = (): boolean => interruptedBySignal;

/**
 * On the first SIGINT or SIGTERM: prints `${signal}: ${what} (again to force)` (when `what` is given), runs
 * `stop` and exits 130. A second signal exits 130 at once.
 */
export function stopOnInterrupt(what: string | undefined, stop: () => Promise<unknown>): void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (interruptedBySignal) process.exit(130);
    interruptedBySignal = true;
    if (what !== undefined) console.log(`\n${signal}: ${what} (again to force)`);
    void stop().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

/**
 * Runs a benchmark's main: exit 0 when done, 1 on error; but on an error after an interrupt, the signal
 * handler (stopOnInterrupt) is stopping everything and exits.
 */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      if (interruptedBySignal) return;
      exitWithError(error);
    },
  );
}

// ---------------------------------------------------------------------------------------------
// CPU time from /proc and os.cpus()

let clockTicks: number | undefined;

/** Clock ticks per second of /proc's CPU times (asked once, when first needed). */
function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * User + system CPU seconds of a process (all its threads), from /proc/<pid>/stat; with endedChildren, also
 * those of its children that have ended and been waited for (ffmpeg, for a worker). 0 once it is gone.
 */
export function procCpuSeconds(pid: number | undefined, { endedChildren = false } = {}): number {
  if (pid === undefined) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces; the fields after its closing parenthesis are fixed.
    // utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after the name.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const indices = endedChildren ? [11, 12, 13, 14] : [11, 12];
    return indices.reduce((sum, index) => sum + Number(fields[index] ?? 0), 0) / clockTicksPerSecond();
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole machine so far (all cores). */
export function machineBusySeconds(): number {
  return os.cpus().reduce((sum, cpu) => sum + (cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq) / 1000, 0);
}

// ---------------------------------------------------------------------------------------------
// For the children

/**
 * Parent -> a child that watches its own measuring windows (bench/auth-server.ts; bench/upload-window.ts in
 * bench/upload-server.ts and bench/harness/services.ts), over IPC: "reset" starts a window, "report" asks for it so far.
 */
export type WindowRequest = { readonly type: "reset" } | { readonly type: "report" };

/** Such a child -> its parent: "ready" once listening, then the answers to WindowRequest; a report R under the key K. */
export type WindowAnswer<K extends string, R> =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "reset" }
  | ({ readonly type: "report" } & { readonly [key in K]: R });

/**
 * Runs `stop` once, on the first of SIGTERM, SIGINT or the parent going away (its IPC channel closing, or
 * with parentGone "stdin", the end of stdin), then exits.
 */
export function stopOnce(stop: () => Promise<void>, parentGone: "disconnect" | "stdin"): void {
  let stopping = false;
  const run = () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("stop failed:", error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", run);
  process.on("SIGINT", run);
  if (parentGone === "disconnect") {
    process.on("disconnect", run);
  } else {
    process.stdin.on("end", run);
    process.stdin.on("error", run);
    process.stdin.resume();
  }
}

/** A bare benchmark HTTP server: kept-alive connections as the Shoal front door keeps them, stopped with the process. */
export async function serveUntilStopped(server: http.Server, parentGone: "disconnect" | "stdin", port: number, host?: string): Promise<number> {
  // As the Shoal front door, so that both keep connections the same way.
  server.keepAliveTimeout = 65_000;
  stopOnce(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    parentGone,
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (host === undefined) server.listen(port, () => resolve());
    else server.listen(port, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

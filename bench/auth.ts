/**
 * Sign-in benchmark: `npm run bench:auth` (see bench/README.md).
 *
 * Starts an embedded Shoal server in a child process (bench/auth-server.ts), creates an account with
 * the operator command (scripts/user-create.ts, on the running server's data directory), then measures:
 *   (a) sign-in throughput: POST /api/auth/login from 8 connections for BENCH_SECONDS (autocannon):
 *       req/s, p50, p99, with the argon2id parameters of lib/auth/passwords.ts;
 *   (b) a stream of cached reads (GET /api/users/<id>, open loop at BENCH_READ_RATE per second) alone
 *       (baseline), then while 20 sign-ins run concurrently the whole time: the reads' p50/p99 seen by
 *       the client, and the server's event-loop delay (perf_hooks.monitorEventLoopDelay in the child,
 *       reported over IPC). Prints the ratios loaded/baseline.
 * Goal (reported, not asserted): the read's p99 stays under 50 ms while the sign-ins run.
 * Writes bench/results/auth.json.
 *
 * Environment: BENCH_SECONDS (each measured round, default 10), BENCH_WARMUP_SECONDS (default 2, at
 * most BENCH_SECONDS), BENCH_READ_RATE (reads per second in (b), default 200), BENCH_OUTPUT (default
 * bench/results/auth.json). UV_THREADPOOL_SIZE is passed on to the server when set.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createHistogram, monitorEventLoopDelay, performance } from "node:perf_hooks";
import type { IntervalHistogram, RecordableHistogram } from "node:perf_hooks";
import autocannon from "autocannon";
import { ARGON2_OPTIONS, hashPassword, verifyPassword } from "../lib/auth/passwords";
import { MONITOR_RESOLUTION_MS } from "./auth-protocol";
import type { FromServer, LoopReport } from "./auth-protocol";
import { BenchChild, baseEnv } from "./harness/children";
import {
  PROJECT_ROOT,
  codeState,
  delay,
  loadAverage1m,
  machineBusySeconds,
  machineInfo,
  numberFromEnv,
  outputFromEnv,
  packageVersion,
  printWrittenTo,
  registerAccount,
  round,
  runMain,
  stamped,
  statusCounts,
  stopOnInterrupt,
  writeReport,
} from "./harness/common";

const SERVER_SCRIPT = path.join(__dirname, "auth-server.ts");
const USER_CREATE_SCRIPT = path.join(PROJECT_ROOT, "scripts", "user-create.ts");
const SIGN_IN_CONNECTIONS = 8;
const CONCURRENT_SIGN_INS = 20;
const GOAL_READ_P99_MS = 50;
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 15_000;
const READ_TIMEOUT_MS = 10_000;
/** Time for the 20 sign-ins to be in flight before the reads of the loaded round start. */
const RAMP_MS = 500;
/**
 * Sign-ins go round-robin over this many accounts, as many different people signing in would: more
 * than 10 at once for one account hit its failed-sign-in allowance (attempts count until verified).
 */
const ACCOUNTS = CONCURRENT_SIGN_INS;
const PASSWORD = "bench sign-in passphrase 7f3c";
const accountName = (index: number): string => `benchauth${index}`;

interface Options {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly readRate: number;
  readonly output: string;
}

interface Latency {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

interface SignInFigures {
  readonly requestsPerSecond: number;
  readonly latencyMs: Omit<Latency, "p90">;
  readonly requests: number;
  readonly durationSeconds: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly statusCodes?: Readonly<Record<string, number>>;
}

interface ReadFigures {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  readonly mismatches: number;
  readonly latencyMs: Latency;
}

/** What the machine did during one measured window. */
interface WindowFigures {
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

interface Round extends WindowFigures {
  readonly read: ReadFigures;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function readOptions(): Options {
  const seconds = numberFromEnv("BENCH_SECONDS", 10);
  return {
    seconds,
    warmupSeconds: Math.min(numberFromEnv("BENCH_WARMUP_SECONDS", 2), seconds),
    readRate: numberFromEnv("BENCH_READ_RATE", 200),
    output: outputFromEnv("auth"),
  };
}

const progress = stamped;

/** Percentiles of a histogram of nanoseconds, in milliseconds, less `offsetMs` (an event-loop monitor's resolution). */
function latencyOf(histogram: RecordableHistogram | IntervalHistogram, offsetMs = 0): Latency {
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
const PASS_ENV = ["UV_THREADPOOL_SIZE"];

type ServerChild = BenchChild<FromServer>;

/** Creates an account with the operator command, on the data directory of the running server; resolves with its id. */
function createAccountWithCommand(dataDir: string, username: string): Promise<string> {
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
// ---------------------------------------------------------------------------------------------
// Load

let currentLoad: autocannon.Instance | undefined;

function signIns(baseUrl: string, connections: number, seconds: number): { instance: autocannon.Instance; result: Promise<autocannon.Result> } {
  const bodies = Array.from({ length: ACCOUNTS }, (_, index) => JSON.stringify({ login: accountName(index), password: PASSWORD }));
  let next = 0;
  let instance: autocannon.Instance | undefined;
  const result = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: `${baseUrl}/api/auth/login`,
        method: "POST",
        headers: { "content-type": "application/json" },
        requests: [{ setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] }) }],
        connections,
        pipelining: 1,
        duration: seconds,
      },
      (error: unknown, outcome) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(outcome)),
    );
  }).finally(() => {
    currentLoad = undefined;
  });
  currentLoad = instance;
  return { instance: instance as autocannon.Instance, result };
}

function signInFigures(result: autocannon.Result): SignInFigures {
  const statusCodes = statusCounts(result);
  return {
    requestsPerSecond: round(result["2xx"] / result.duration, 1),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: round(result.latency.mean, 2), max: result.latency.max },
    requests: result["2xx"],
    durationSeconds: round(result.duration, 2),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    ...(result.non2xx > 0 ? { statusCodes } : {}),
  };
}

/** One GET on a kept-alive connection; resolves with status, body and nanoseconds from send to last byte. */
function timedGet(agent: http.Agent, url: URL): Promise<{ status: number; body: string; ns: bigint }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const request = http.get(url, { agent, timeout: READ_TIMEOUT_MS }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), ns: process.hrtime.bigint() - started }),
      );
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`no answer within ${READ_TIMEOUT_MS} ms`)));
    request.on("error", reject);
  });
}

/**
 * Sends reads at a fixed rate whatever the answers' latency (open loop: a stalled server does not
 * slow the sending, so its stall shows in every read it delays), for `seconds`; waits for the last.
 */
async function readStream(url: URL, ratePerSecond: number, seconds: number, expectBody: string): Promise<ReadFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const histogram = createHistogram();
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let mismatches = 0;
  const pending = new Set<Promise<void>>();
  const periodMs = 1000 / ratePerSecond;
  const start = performance.now();
  const end = start + seconds * 1000;
  for (let index = 0; ; index++) {
    const due = start + index * periodMs;
    if (due >= end) break;
    const wait = due - performance.now();
    if (wait >= 1) await delay(wait);
    sent++;
    const read = timedGet(agent, url).then(
      ({ status, body, ns }) => {
        histogram.record(ns > 0n ? ns : 1n);
        if (status !== 200) failed++;
        else if (body !== expectBody) mismatches++;
        else ok++;
      },
      () => {
        failed++;
      },
    );
    pending.add(read);
    void read.finally(() => pending.delete(read));
  }
  await Promise.all(pending);
  agent.destroy();
  return { sent, ok, failed, mismatches, latencyMs: latencyOf(histogram) };
}

/** One measured window: the server's loop monitor and the client's are reset at its start and read at its end. */
async function measuredWindow<T>(server: ServerChild, clientLoop: IntervalHistogram, work: () => Promise<T>): Promise<{ value: T; figures: WindowFigures }> {
  const loadAverage1mBefore = loadAverage1m();
  await server.ask({ type: "reset" });
  clientLoop.reset();
  const started = { at: performance.now(), busy: machineBusySeconds(), client: process.cpuUsage() };
  const value = await work();
  const seconds = (performance.now() - started.at) / 1000;
  const client = process.cpuUsage(started.client);
  const serverLoop = (await server.ask({ type: "report" })).report;
  const machineCpu = (machineBusySeconds() - started.busy) / seconds;
  const clientCpu = (client.user + client.system) / 1e6 / seconds;
  return {
    value,
    figures: {
      serverLoop,
      clientLoopDelayMs: latencyOf(clientLoop, MONITOR_RESOLUTION_MS),
      cpuSecondsPerSecond: {
        server: serverLoop.cpuSecondsPerSecond,
        client: round(clientCpu, 2),
        otherProcesses: round(Math.max(0, machineCpu - clientCpu - serverLoop.cpuSecondsPerSecond), 2),
      },
      loadAverage1mBefore,
    },
  };
}

/** How long one argon2id hash and one verification take here with nothing else running (ms, 10 each). */
async function argon2Timings(): Promise<{ hashMs: Latency; verifyMs: Latency }> {
  const hashes = createHistogram();
  const verifies = createHistogram();
  let hash = "";
  for (let i = 0; i < 10; i++) {
    const started = process.hrtime.bigint();
    hash = await hashPassword(`${PASSWORD} ${i}`);
    hashes.record(process.hrtime.bigint() - started);
  }
  for (let i = 0; i < 10; i++) {
    const started = process.hrtime.bigint();
    await verifyPassword(hash, PASSWORD);
    verifies.record(process.hrtime.bigint() - started);
  }
  return { hashMs: latencyOf(hashes), verifyMs: latencyOf(verifies) };
}

// ---------------------------------------------------------------------------------------------
// Report

function describeSignIns(value: SignInFigures): string {
  const problems = [
    value.non2xx > 0 ? `${value.non2xx} non-2xx ${JSON.stringify(value.statusCodes ?? {})}` : "",
    value.errors > 0 ? `${value.errors} errors` : "",
  ].filter((text) => text !== "");
  const suffix = problems.length > 0 ? `  (!) ${problems.join(", ")}` : "";
  return `${value.requestsPerSecond.toFixed(1)} sign-ins/s, p50 ${value.latencyMs.p50} ms, p99 ${value.latencyMs.p99} ms${suffix}`;
}

function describeWindow({ serverLoop, cpuSecondsPerSecond: cpu }: WindowFigures): string {
  const others = cpu.otherProcesses >= 0.2 ? ` (!) other processes used ${cpu.otherProcesses} CPU s/s` : "";
  return (
    `server loop delay p99 ${serverLoop.delayMs.p99} ms (max ${serverLoop.delayMs.max}), main thread busy ${(serverLoop.utilization * 100).toFixed(0)} %, ` +
    `GC ${serverLoop.gc.count}x, longest ${serverLoop.gc.maxMs} ms; ` +
    `CPU s/s server ${cpu.server}, client ${cpu.client}, others ${cpu.otherProcesses}${others}`
  );
}

function describeRound(value: Round): string {
  const { read } = value;
  const problems = read.failed + read.mismatches > 0 ? `  (!) ${read.failed} failed, ${read.mismatches} other bodies` : "";
  return (
    `read p50 ${read.latencyMs.p50} ms, p99 ${read.latencyMs.p99} ms, max ${read.latencyMs.max} ms (${read.ok}/${read.sent} ok)${problems}; ` +
    describeWindow(value)
  );
}

async function main(): Promise<void> {
  const options = readOptions();
  let server: ServerChild | undefined;
  let dataDir: string | undefined;
  const cleanUp = async () => {
    currentLoad?.stop();
    await server?.stop();
    if (dataDir !== undefined) fs.rmSync(dataDir, { recursive: true, force: true });
  };
  stopOnInterrupt("stopping the server", cleanUp);

  const machine = machineInfo();
  const date = new Date().toISOString();
  const threadPoolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  progress(`${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}`);
  progress(`argon2id ${JSON.stringify(ARGON2_OPTIONS)}; libuv thread pool ${threadPoolSize}`);
  if ((os.loadavg()[0] ?? 0) > 0.5) {
    progress(`warning: load average ${machine.loadAverageAtStart.join(" ")}: other work on this machine will skew the figures`);
  }

  const argon2 = await argon2Timings();
  progress(`one argon2id hash here, idle: p50 ${argon2.hashMs.p50} ms; one verification: p50 ${argon2.verifyMs.p50} ms`);

  const clientLoop = monitorEventLoopDelay({ resolution: MONITOR_RESOLUTION_MS });
  clientLoop.enable();
  try {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-bench-auth-"));
    progress("starting the embedded Shoal server (child process)");
    server = new BenchChild<FromServer>("the server child", SERVER_SCRIPT, {
      SHOAL_MODE: "embedded",
      SHOAL_DATA_DIR: dataDir,
      LOG_LEVEL: "warn",
      // All load comes from one address: keep the per-address limits (still checked on every request) out of the way.
      RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000000",
      RATE_REGISTRATIONS_PER_IP_PER_HOUR: String(ACCOUNTS),
    }, { channel: "ipc", stopTimeoutMs: STOP_TIMEOUT_MS, passEnv: PASS_ENV });
    const baseUrl = `http://127.0.0.1:${(await server.next("ready", START_TIMEOUT_MS)).port}`;
    progress("creating the account to read with scripts/user-create.ts --password-stdin, beside the running server");
    const userId = await createAccountWithCommand(dataDir, accountName(0));
    progress(`signing up ${ACCOUNTS - 1} more accounts through the API`);
    for (let index = 1; index < ACCOUNTS; index++) await registerAccount(baseUrl, accountName(index), PASSWORD);
    const readUrl = new URL(`${baseUrl}/api/users/${userId}`);
    const first = await timedGet(new http.Agent(), readUrl);
    if (first.status !== 200) throw new Error(`GET ${readUrl.pathname}: ${first.status} ${first.body}`);
    const expectBody = first.body;

    // (a) sign-in throughput
    progress(`(a) sign-ins from ${SIGN_IN_CONNECTIONS} connections: warm-up ${options.warmupSeconds} s`);
    await signIns(baseUrl, SIGN_IN_CONNECTIONS, options.warmupSeconds).result;
    progress(`(a) measuring ${options.seconds} s`);
    const throughput = await measuredWindow(server, clientLoop, () => signIns(baseUrl, SIGN_IN_CONNECTIONS, options.seconds).result);
    const signInThroughput = { ...signInFigures(throughput.value), ...throughput.figures };
    progress(`(a) ${describeSignIns(signInThroughput)}; ${describeWindow(throughput.figures)}`);

    // (b) cached reads alone, then beside 20 concurrent sign-ins
    progress(`(b) warm-up: cached reads at ${options.readRate}/s for ${options.warmupSeconds} s`);
    await readStream(readUrl, options.readRate, options.warmupSeconds, expectBody);
    await delay(1000);
    progress(`(b) baseline: cached reads at ${options.readRate}/s alone, ${options.seconds} s`);
    const baselineWindow = await measuredWindow(server, clientLoop, () => readStream(readUrl, options.readRate, options.seconds, expectBody));
    const baseline: Round = { read: baselineWindow.value, ...baselineWindow.figures };
    progress(`(b) baseline: ${describeRound(baseline)}`);

    progress(`(b) with ${CONCURRENT_SIGN_INS} sign-ins in flight the whole time: ${options.seconds} s`);
    const background = signIns(baseUrl, CONCURRENT_SIGN_INS, options.seconds + 30);
    await delay(RAMP_MS);
    const loadedWindow = await measuredWindow(server, clientLoop, () => readStream(readUrl, options.readRate, options.seconds, expectBody));
    background.instance.stop();
    const concurrentSignIns = signInFigures(await background.result);
    const withSignIns: Round & { readonly signIns: SignInFigures } = { read: loadedWindow.value, ...loadedWindow.figures, signIns: concurrentSignIns };
    progress(`(b) with sign-ins: ${describeRound(withSignIns)}`);
    progress(`(b) the concurrent sign-ins: ${describeSignIns(concurrentSignIns)}`);

    const ratio = (loaded: number, alone: number) => (alone > 0 ? round(loaded / alone, 2) : null);
    const ratios = {
      readP50: ratio(withSignIns.read.latencyMs.p50, baseline.read.latencyMs.p50),
      readP99: ratio(withSignIns.read.latencyMs.p99, baseline.read.latencyMs.p99),
      serverLoopDelayP99: ratio(withSignIns.serverLoop.delayMs.p99, baseline.serverLoop.delayMs.p99),
    };
    const reached = withSignIns.read.latencyMs.p99;
    const report = {
      benchmark: "auth",
      date,
      machine,
      code: codeState() ?? null,
      argon2: { options: ARGON2_OPTIONS, libuvThreadPoolSize: threadPoolSize, idleTimings: argon2 },
      load: {
        tool: `autocannon ${packageVersion("autocannon")} for sign-ins; node:http open-loop reader for reads (both in the parent process)`,
        signInConnections: SIGN_IN_CONNECTIONS,
        signInAccounts: `${ACCOUNTS}, round-robin`,
        concurrentSignIns: CONCURRENT_SIGN_INS,
        readRatePerSecond: options.readRate,
        warmupSeconds: options.warmupSeconds,
        measuredSeconds: options.seconds,
        loopMonitor: `perf_hooks.monitorEventLoopDelay, resolution ${MONITOR_RESOLUTION_MS} ms, in the server child (reported over IPC) and in the parent; delay = interval - resolution`,
      },
      goal: {
        statement: `p99 of a cached read while ${CONCURRENT_SIGN_INS} sign-ins run concurrently < ${GOAL_READ_P99_MS} ms (this machine)`,
        reachedMs: reached,
        met: reached < GOAL_READ_P99_MS,
      },
      signInThroughput,
      readUnderSignIns: { read: "GET /api/users/:id (cached)", baseline, withSignIns, ratios },
    };
    writeReport(options.output, report);

    const row = (label: string, value: Round) =>
      `  ${label.padEnd(28)}${String(value.read.latencyMs.p50).padStart(9)}${String(value.read.latencyMs.p99).padStart(9)}` +
      `${String(value.read.latencyMs.max).padStart(9)}${String(value.serverLoop.delayMs.p99).padStart(12)}${String(value.serverLoop.delayMs.max).padStart(12)}` +
      `${String(value.clientLoopDelayMs.p99).padStart(12)}`;
    console.log("");
    console.log(
      `Sign-in benchmark, ${date}: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; ` +
        `argon2id m=${ARGON2_OPTIONS.memoryCost} KiB t=${ARGON2_OPTIONS.timeCost} p=${ARGON2_OPTIONS.parallelism}, thread pool ${threadPoolSize}`,
    );
    console.log(`\n(a) sign-ins, ${SIGN_IN_CONNECTIONS} connections, ${options.seconds} s: ${describeSignIns(signInThroughput)}`);
    console.log(`\n(b) cached read at ${options.readRate}/s${"read p50".padStart(16)}${"p99".padStart(9)}${"max".padStart(9)}${"server loop".padStart(12)}${"server loop".padStart(12)}${"client loop".padStart(12)}`);
    console.log(`${"".padStart(55)}${"delay p99".padStart(12)}${"delay max".padStart(12)}${"delay p99".padStart(12)}`);
    console.log(row("alone", baseline));
    console.log(row(`with ${CONCURRENT_SIGN_INS} sign-ins in flight`, withSignIns));
    console.log(`  ratios with/alone: read p50 ${ratios.readP50}, read p99 ${ratios.readP99}, server loop delay p99 ${ratios.serverLoopDelayP99}`);
    console.log(`  concurrent sign-ins: ${describeSignIns(concurrentSignIns)}`);
    console.log(`\ngoal (read p99 < ${GOAL_READ_P99_MS} ms with sign-ins running): reached ${reached} ms -> ${report.goal.met ? "met" : "not met"}`);
    printWrittenTo(options.output);
  } finally {
    clientLoop.disable();
    await cleanUp();
  }
}

runMain(main);

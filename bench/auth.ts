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
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { ARGON2_OPTIONS } from "../lib/auth/passwords";
import { MONITOR_RESOLUTION_MS } from "./auth-protocol";
import type { FromServer } from "./auth-protocol";
import { BenchChild } from "./harness/children";
import { codeState, delay, machineInfo, packageVersion, printWrittenTo, registerAccount, round, runMain, stopOnInterrupt, writeReport } from "./harness/common";
import type { Round, ServerChild, SignInFigures } from "./auth-shared";
import { ACCOUNTS, CONCURRENT_SIGN_INS, GOAL_READ_P99_MS, PASSWORD, PASS_ENV, RAMP_MS, SERVER_SCRIPT, SIGN_IN_CONNECTIONS, START_TIMEOUT_MS, STOP_TIMEOUT_MS, accountName, createAccountWithCommand, progress, readOptions } from "./auth-shared";
import { argon2Timings, describeRound, describeSignIns, describeWindow, measuredWindow, readStream, signInFigures, signIns, stopCurrentLoad, timedGet } from "./auth-load";

async function main(): Promise<void> {
  const options = readOptions();
  let server: ServerChild | undefined;
  let dataDir: string | undefined;
  const cleanUp = async () => {
    stopCurrentLoad();
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

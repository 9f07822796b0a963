/** The sign-in benchmark's load: sign-ins with autocannon, a steady stream of reads, measured windows and their progress lines (bench/auth.ts). */
import http from "node:http";
import { createHistogram, performance } from "node:perf_hooks";
import type { IntervalHistogram } from "node:perf_hooks";
import autocannon from "autocannon";
import { hashPassword, verifyPassword } from "../lib/auth/passwords";
import { MONITOR_RESOLUTION_MS } from "./auth-protocol";
import { delay, loadAverage1m, machineBusySeconds, round, statusCounts } from "./harness/common";
import type { Latency, ReadFigures, Round, ServerChild, SignInFigures, WindowFigures } from "./auth-shared";
import { ACCOUNTS, PASSWORD, READ_TIMEOUT_MS, accountName, latencyOf } from "./auth-shared";

// ---------------------------------------------------------------------------------------------
// Load

let currentLoad: autocannon.Instance | undefined;

/** Stops the sign-in load in progress (on interrupt). */
export function stopCurrentLoad(): void {
  currentLoad?.stop();
}

export function signIns(baseUrl: string, connections: number, seconds: number): { instance: autocannon.Instance; result: Promise<autocannon.Result> } {
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

export function signInFigures(result: autocannon.Result): SignInFigures {
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
export function timedGet(agent: http.Agent, url: URL): Promise<{ status: number; body: string; ns: bigint }> {
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
export async function readStream(url: URL, ratePerSecond: number, seconds: number, expectBody: string): Promise<ReadFigures> {
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
export async function measuredWindow<T>(server: ServerChild, clientLoop: IntervalHistogram, work: () => Promise<T>): Promise<{ value: T; figures: WindowFigures }> {
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
export async function argon2Timings(): Promise<{ hashMs: Latency; verifyMs: Latency }> {
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

export function describeSignIns(value: SignInFigures): string {
  const problems = [
    value.non2xx > 0 ? `${value.non2xx} non-2xx ${JSON.stringify(value.statusCodes ?? {})}` : "",
    value.errors > 0 ? `${value.errors} errors` : "",
  ].filter((text) => text !== "");
  const suffix = problems.length > 0 ? `  (!) ${problems.join(", ")}` : "";
  return `${value.requestsPerSecond.toFixed(1)} sign-ins/s, p50 ${value.latencyMs.p50} ms, p99 ${value.latencyMs.p99} ms${suffix}`;
}

export function describeWindow({ serverLoop, cpuSecondsPerSecond: cpu }: WindowFigures): string {
  const others = cpu.otherProcesses >= 0.2 ? ` (!) other processes used ${cpu.otherProcesses} CPU s/s` : "";
  return (
    `server loop delay p99 ${serverLoop.delayMs.p99} ms (max ${serverLoop.delayMs.max}), main thread busy ${(serverLoop.utilization * 100).toFixed(0)} %, ` +
    `GC ${serverLoop.gc.count}x, longest ${serverLoop.gc.maxMs} ms; ` +
    `CPU s/s server ${cpu.server}, client ${cpu.client}, others ${cpu.otherProcesses}${others}`
  );
}

export function describeRound(value: Round): string {
  const { read } = value;
  const problems = read.failed + read.mismatches > 0 ? `  (!) ${read.failed} failed, ${read.mismatches} other bodies` : "";
  return (
    `read p50 ${read.latencyMs.p50} ms, p99 ${read.latencyMs.p99} ms, max ${read.latencyMs.max} ms (${read.ok}/${read.sent} ok)${problems}; ` +
    describeWindow(value)
  );
}


/**
 * Read benchmark: `npm run bench:read` (see bench/README.md).
 *
 * For each mode (embedded, then cluster on private MariaDB primary+replica, Redis, NATS and S3),
 * loads three servers, each in a child process, with autocannon from this process:
 *   (a) GET /api/users/<id> through the gateway of a node with the response cache on;
 *   (b) the same read on a second node started with CACHE_ENABLED=false;
 *   (c) a bare node:http server answering the same bytes with the same Content-Type.
 * Prints req/s, p50 and p99 per server and the ratios a/c and b/c; writes bench/results/read.json.
 *
 * Environment: BENCH_SECONDS (measured round, default 10), BENCH_WARMUP_SECONDS (default 3, at most
 * BENCH_SECONDS), BENCH_MODES (default "embedded,cluster"), BENCH_OUTPUT (default
 * bench/results/read.json), BENCH_CPU_PROF_DIR (run the Shoal children with --cpu-prof, one
 * subdirectory per child; CPU.*.<pid>.0.*.cpuprofile is the main thread, the others tsx's loader thread).
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { envFor, startServices } from "../scripts/services";
import { ShoalChild, waitForHealth } from "./harness/children";
import type { ReadyLine } from "./harness/shoal-node";
import {
  Resources,
  cpuProfDirFromEnv,
  delay,
  interrupted,
  loadAverage1m,
  modesFromEnv,
  numberFromEnv,
  outputFromEnv,
  packageVersion,
  printWrittenTo,
  progress,
  round,
  runMain,
  startRun,
  statusCounts,
  stopOnInterrupt,
  writeReport,
} from "./harness/common";
import type { Mode } from "./harness/common";

const CONNECTIONS = 64;
const PIPELINING = 1;
const START_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 15_000;
/** A degraded cluster node (replica not yet in rotation) reads from the primary: wait this long for "ok". */
const HEALTH_OK_TIMEOUT_MS = 30_000;
const GOAL_A_OVER_C = 0.4;

type Target = "a" | "b" | "c";

interface Options {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly modes: readonly Mode[];
  readonly output: string;
  readonly cpuProfDir: string | undefined;
}

interface Figures {
  readonly requestsPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly mean: number; readonly max: number };
  readonly requests: number;
  readonly durationSeconds: number;
  /** 1-minute load average just before the measured round (other work on the machine skews figures). */
  readonly loadAverage1mBefore: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly mismatches: number;
  /** Responses by status code, when any was not 2xx. */
  readonly statusCodes?: Readonly<Record<string, number>>;
}

interface ModeResult {
  readonly description: Record<Target, string>;
  readonly a: Figures;
  readonly b: Figures;
  readonly c: Figures;
  readonly ratios: { readonly aOverC: number; readonly bOverC: number };
  readonly checks: {
    readonly responseBytes: number;
    readonly contentType: string;
    /** Header names and size of a gateway answer, and the size of the raw server's headers. */
    readonly gatewayResponseHeaders: readonly string[];
    readonly headerBytes: { readonly gateway: number; readonly raw: number };
    readonly health: { readonly cached: string; readonly uncached: string };
    readonly cacher: { readonly gets: number; readonly hits: number } | undefined;
    readonly uncachedReadRouting: unknown;
  };
}

// ---------------------------------------------------------------------------------------------
// Small functions

function readOptions(): Options {
  const seconds = numberFromEnv("BENCH_SECONDS", 10);
  const warmupSeconds = numberFromEnv("BENCH_WARMUP_SECONDS", Math.min(3, seconds));
  return { seconds, warmupSeconds, modes: modesFromEnv(), output: outputFromEnv("read"), cpuProfDir: cpuProfDirFromEnv() };
}

// ---------------------------------------------------------------------------------------------
// Servers under test, each a child process running bench/harness/shoal-node.ts

async function startChild(
  resources: Resources,
  label: string,
  env: Record<string, string>,
  nodeFlags: readonly string[] = [],
): Promise<{ child: ShoalChild; ready: ReadyLine; baseUrl: string }> {
  const child = new ShoalChild(label, env, { startTimeoutMs: START_TIMEOUT_MS, stopTimeoutMs: STOP_TIMEOUT_MS, nodeFlags });
  resources.add(label, () => child.stop());
  const ready = await child.ready;
  return { child, ready, baseUrl: `http://127.0.0.1:${ready.port}` };
}

/** GETs until 200 (a replica may not have the new row yet); returns the exact bytes and headers. */
async function fetchOk(url: string, timeoutMs = 30_000): Promise<{ body: Buffer; headers: Headers }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const body = Buffer.from(await response.arrayBuffer());
    if (response.status === 200) return { body, headers: response.headers };
    if (Date.now() > deadline) throw new Error(`GET ${url}: ${response.status} ${body.toString("utf8")}`);
    await delay(100);
  }
}

/** About what the headers take on the wire (`name: value\r\n` each, without the status line). */
function headerBytes(headers: Headers): number {
  let bytes = 0;
  headers.forEach((value, name) => {
    bytes += Buffer.byteLength(`${name}: ${value}\r\n`);
  });
  return bytes;
}

/** Sums a Prometheus counter over its label sets. */
async function promCounter(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
}

// ---------------------------------------------------------------------------------------------
// Load

let currentLoad: autocannon.Instance | undefined;

function load(url: string, seconds: number, expectBody: string): Promise<autocannon.Result> {
  return new Promise<autocannon.Result>((resolve, reject) => {
    if (interrupted()) return reject(new Error("interrupted"));
    currentLoad = autocannon(
      { url, connections: CONNECTIONS, pipelining: PIPELINING, duration: seconds, expectBody },
      (error: unknown, result) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(result)),
    );
  }).finally(() => {
    currentLoad = undefined;
  });
}

function figures(result: autocannon.Result, loadAverage1mBefore: number): Figures {
  return {
    requestsPerSecond: round(result["2xx"] / result.duration, 1),
    latencyMs: {
      p50: result.latency.p50,
      p99: result.latency.p99,
      mean: round(result.latency.mean, 2),
      max: result.latency.max,
    },
    requests: result["2xx"],
    durationSeconds: round(result.duration, 2),
    loadAverage1mBefore,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches,
    ...(result.non2xx > 0 ? { statusCodes: statusCounts(result) } : {}),
  };
}

function describeFigures(value: Figures): string {
  const problems = [
    value.non2xx > 0 ? `${value.non2xx} non-2xx ${JSON.stringify(value.statusCodes ?? {})}` : "",
    value.errors > 0 ? `${value.errors} errors` : "",
    value.mismatches > 0 ? `${value.mismatches} body mismatches` : "",
  ].filter((text) => text !== "");
  const suffix = problems.length > 0 ? `  (!) ${problems.join(", ")}` : "";
  return `${value.requestsPerSecond.toFixed(0)} req/s, p50 ${value.latencyMs.p50} ms, p99 ${value.latencyMs.p99} ms${suffix}`;
}

async function measure(scope: string, label: string, url: string, expectBody: string, options: Options): Promise<Figures> {
  progress(scope, `${label}: warm-up ${options.warmupSeconds} s`);
  await load(url, options.warmupSeconds, expectBody);
  if (interrupted()) throw new Error("interrupted");
  progress(scope, `${label}: measuring ${options.seconds} s`);
  const loadBefore = loadAverage1m();
  const result = figures(await load(url, options.seconds, expectBody), loadBefore);
  progress(scope, `${label}: ${describeFigures(result)}`);
  return result;
}

// ---------------------------------------------------------------------------------------------
// One mode

async function runMode(mode: Mode, options: Options, resources: Resources): Promise<ModeResult> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `shoal-bench-${mode}-`));
  resources.add(`data directory ${dataDir}`, () => fs.promises.rm(dataDir, { recursive: true, force: true }));

  let modeEnv: Record<string, string> = { SHOAL_MODE: "embedded" };
  if (mode === "cluster") {
    progress(mode, "starting private MariaDB primary + 1 replica, Redis, NATS, S3");
    const services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
    resources.add("private services", () => services.stop());
    modeEnv = envFor(services);
  }
  const shoalEnv = {
    // Both nodes of a mode share one secret (required in cluster mode); envFor() does not provide one.
    SHOAL_SECRET: randomBytes(32).toString("hex"),
    ...modeEnv,
    SHOAL_DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    // All load comes from one address: keep the per-address limit (still checked on every request) out of the way.
    RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000000",
  };
  const profFlags = (name: string) =>
    options.cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${path.join(options.cpuProfDir, name)}`];

  // The first node creates the databases (migrations run at start) and the account to read.
  progress(mode, "starting node (a): response cache on; it creates the user");
  const cached = await startChild(
    resources,
    `${mode} node (a)`,
    { ...shoalEnv, NODE_ID: `bench-${mode}-cached`, BENCH_ROLE: "shoal", BENCH_CREATE_USER: "benchreader" },
    profFlags(`${mode}-a-cached`),
  );
  const cachedHealth = await waitForHealth(mode, "node (a)", cached.baseUrl, START_TIMEOUT_MS, HEALTH_OK_TIMEOUT_MS);
  const userId = cached.ready.userId;
  if (userId === undefined) throw new Error("node (a) did not report the id of the user it created");

  progress(mode, "starting node (b): CACHE_ENABLED=false");
  const uncached = await startChild(
    resources,
    `${mode} node (b)`,
    { ...shoalEnv, NODE_ID: `bench-${mode}-uncached`, BENCH_ROLE: "shoal", CACHE_ENABLED: "false" },
    profFlags(`${mode}-b-uncached`),
  );
  const uncachedHealth = await waitForHealth(mode, "node (b)", uncached.baseUrl, START_TIMEOUT_MS, HEALTH_OK_TIMEOUT_MS);

  const readPath = `/api/users/${userId}`;
  const reference = await fetchOk(`${cached.baseUrl}${readPath}`);
  const contentType = reference.headers.get("content-type") ?? "application/json";
  const expectBody = reference.body.toString("utf8");
  const fromUncached = await fetchOk(`${uncached.baseUrl}${readPath}`);
  if (!fromUncached.body.equals(reference.body)) {
    throw new Error(`node (b) answers other bytes than node (a):\n${fromUncached.body.toString("utf8")}\n${expectBody}`);
  }
  progress(mode, `reading ${readPath}: ${reference.body.length} bytes, ${contentType}`);

  progress(mode, "starting (c): raw node:http server with the same bytes");
  const raw = await startChild(resources, `${mode} raw server (c)`, {
    BENCH_ROLE: "raw",
    BENCH_BODY_BASE64: reference.body.toString("base64"),
    BENCH_CONTENT_TYPE: contentType,
  });

  const rawHeaders = (await fetchOk(`${raw.baseUrl}${readPath}`)).headers;

  const a = await measure(mode, "(a) cached", `${cached.baseUrl}${readPath}`, expectBody, options);
  const b = await measure(mode, "(b) uncached", `${uncached.baseUrl}${readPath}`, expectBody, options);
  const c = await measure(mode, "(c) raw", `${raw.baseUrl}${readPath}`, expectBody, options);

  const cacher = {
    gets: await promCounter(cached.baseUrl, "moleculer_cacher_get_total"),
    hits: await promCounter(cached.baseUrl, "moleculer_cacher_found_total"),
  };
  await raw.child.stopAndReport();
  const uncachedReadRouting = await uncached.child.stopAndReport();
  await cached.child.stopAndReport();

  return {
    description: {
      a: `GET /api/users/:id through the gateway, response cache on (${mode === "cluster" ? "Redis" : "memory"})`,
      b: `the same read with CACHE_ENABLED=false (${mode === "cluster" ? "MariaDB replica query" : "SQLite query"})`,
      c: "bare node:http server answering the same bytes and Content-Type",
    },
    a,
    b,
    c,
    ratios: {
      aOverC: round(a.requestsPerSecond / c.requestsPerSecond, 3),
      bOverC: round(b.requestsPerSecond / c.requestsPerSecond, 3),
    },
    checks: {
      responseBytes: reference.body.length,
      contentType,
      gatewayResponseHeaders: [...reference.headers.keys()],
      headerBytes: { gateway: headerBytes(reference.headers), raw: headerBytes(rawHeaders) },
      health: { cached: cachedHealth, uncached: uncachedHealth },
      cacher,
      uncachedReadRouting,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Report

function table(mode: Mode, result: ModeResult): string {
  const rows: Array<[string, Figures]> = [
    [`(a) cached read via gateway`, result.a],
    [`(b) uncached read (${mode === "cluster" ? "replica" : "SQLite"})`, result.b],
    [`(c) raw node:http, same bytes`, result.c],
  ];
  const lines = [`${mode.padEnd(34)}${"req/s".padStart(10)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}`];
  for (const [label, value] of rows) {
    lines.push(
      `  ${label.padEnd(32)}${value.requestsPerSecond.toFixed(0).padStart(10)}${String(value.latencyMs.p50).padStart(9)}${String(value.latencyMs.p99).padStart(9)}`,
    );
  }
  lines.push(`  a/c = ${result.ratios.aOverC.toFixed(3)}   b/c = ${result.ratios.bOverC.toFixed(3)}`);
  return lines.join("\n");
}

async function main(): Promise<void> {
  const options = readOptions();
  const resources = new Resources();
  stopOnInterrupt("stopping the servers and private services", () => {
    currentLoad?.stop();
    return resources.releaseAll();
  });

  const { machine, date, code } = startRun(
    `modes ${options.modes.join(", ")}; ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${options.warmupSeconds} s warm-up + ${options.seconds} s measured per server`,
  );
  const loadSettings = {
    tool: `autocannon ${packageVersion("autocannon")} (programmatic, in the parent process)`,
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    warmupSeconds: options.warmupSeconds,
    measuredSeconds: options.seconds,
  };
  if (options.cpuProfDir !== undefined) {
    fs.mkdirSync(options.cpuProfDir, { recursive: true });
    progress("bench", `CPU profiles of the Shoal children go to ${options.cpuProfDir}`);
  }

  const modes: Partial<Record<Mode, ModeResult>> = {};
  for (const mode of options.modes) {
    try {
      modes[mode] = await runMode(mode, options, resources);
    } finally {
      await resources.releaseAll();
    }
  }

  const clusterRatio = modes.cluster?.ratios.aOverC;
  const report = {
    benchmark: "read",
    date,
    machine,
    code: code ?? null,
    load: loadSettings,
    goal: {
      statement: `cluster mode: (a)/(c) >= ${GOAL_A_OVER_C}`,
      reached: clusterRatio ?? null,
      met: clusterRatio === undefined ? null : clusterRatio >= GOAL_A_OVER_C,
    },
    modes,
  };
  writeReport(options.output, report);

  console.log("");
  console.log(
    `Read benchmark, ${date}: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; ` +
      `${CONNECTIONS} connections, pipelining ${PIPELINING}, ${options.warmupSeconds} s warm-up + ${options.seconds} s measured`,
  );
  for (const mode of options.modes) {
    const result = modes[mode];
    if (result !== undefined) console.log(`\n${table(mode, result)}`);
  }
  if (clusterRatio !== undefined) {
    console.log(`\ngoal (cluster a/c >= ${GOAL_A_OVER_C}): reached ${clusterRatio.toFixed(3)} -> ${report.goal.met ? "met" : "not met"}`);
  }
  printWrittenTo(options.output);
}

runMain(main);

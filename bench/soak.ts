/**
 * Five minutes of mixed load through the load balancer: `npm run bench:soak [-- --seconds N]` (see bench/README.md).
 *
 * Starts the cluster of `npm run cluster` (HAProxy, two api nodes, a core node, two workers, MariaDB with two
 * replicas, Redis, NATS, S3) from the sources, then for --seconds (default 300) runs 20 tus uploaders (photos,
 * an animation, video and audio from test/fixtures; each makes its item public and waits until it is ready
 * before the next), 200 anonymous readers (the public feed, an item from it, its thumbnail; a pause between
 * requests) and 50 open sockets. Each upload is new bytes (the fixture with a trailer), sent by tus-js-client with
 * its retries, as a browser sends it. Every 10 s it samples each node's RSS and open file descriptors and the
 * primary's connections (SHOW PROCESSLIST). When the time is up the uploaders finish the item in hand; then
 * the run checks every item is ready and no file is left behind (node data directories, the bucket).
 *
 * Goal: 0 failed requests and uploads, every item ready, each node's RSS in the last minute of the load at most
 * 1.2 times the first, file descriptors and database connections steady, nothing left behind.
 * Environment: BENCH_OUTPUT (default bench/results/soak.json).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { Socket } from "socket.io-client";
import { startCluster } from "../scripts/cluster/launcher";
import { freePort } from "../scripts/services/ports";
import { delay, loadAverage1m, outputFromEnv, printWrittenTo, progress, registerAccount, round, runMain, startRun, writeReport } from "./harness/common";
import { openSoakSocket, Recorder, runReader, runUploader, SOAK_FIXTURES } from "./soak-clients";
import type { SocketStats, SoakState, UploadStats } from "./soak-clients";
import { bucketContents, haproxyStateChanges, nodeFiles, primarySocket, ProbeTimer, takeSample, trend } from "./soak-watch";
import type { Sample } from "./soak-watch";

const UPLOADERS = 20;
const READERS = 200;
const SOCKETS = 50;
const READER_PAUSE_MS = 1000;
const SAMPLE_EVERY_MS = 10_000;
const RSS_GROWTH_LIMIT = 1.2;
/** After the load, how long the uploaders wait for the items in hand to become ready. */
const DRAIN_MS = 180_000;

function parseOptions(): { seconds: number; output: string } {
  const { values } = parseArgs({ options: { seconds: { type: "string" } }, strict: true });
  const seconds = Number(values.seconds ?? 300);
  if (!Number.isInteger(seconds) || seconds < 20) throw new Error(`--seconds must be a whole number of at least 20 (got ${JSON.stringify(values.seconds)})`);
  return { seconds, output: outputFromEnv("soak") };
}

async function main(): Promise<void> {
  const options = parseOptions();
  const run = startRun(`${options.seconds} s: ${UPLOADERS} tus uploaders, ${READERS} readers, ${SOCKETS} sockets through HAProxy`, { showLoad: true });
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-bench-soak-"));
  progress("soak", "starting the cluster (HAProxy, 2 api nodes, core, 2 workers, MariaDB + 2 replicas, Redis, NATS, S3)");
  const cluster = await startCluster({
    dir,
    port: await freePort(),
    code: "source",
    // Apart from this process, which runs every client: serving S3 here held the clients' event loop up for seconds.
    s3OwnProcess: true,
    nodeEnv: {
      LOG_LEVEL: "warn",
      RATE_API_REQUESTS_PER_IP_PER_MINUTE: "100000000",
      RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100000",
      RATE_UPLOADS_PER_USER_PER_HOUR: "100000",
    },
  });
  const sockets: Socket[] = [];
  try {
    const url = cluster.url;
    const accounts: Array<{ token: string }> = [];
    for (let index = 0; index < UPLOADERS; index++) accounts.push(await registerAccount(url, `soak${index}x${Date.now().toString(36)}`, "a sturdy horse battery 42"));
    const socketPath = primarySocket(cluster);
    const filesBefore = nodeFiles(cluster);
    const recorder = new Recorder();
    const state: SoakState = { stopping: false, drainUntil: 0, items: new Map(), readyIds: [] };
    const socketStats: SocketStats = { connected: 0, unexpectedDisconnects: 0, connectErrors: 0, events: 0 };

    const startedAt = Date.now();
    const samples: Sample[] = [];
    // The clients and the probes share this process: a late turn of its event loop shows up as slow or failed requests.
    const loopDelay = monitorEventLoopDelay({ resolution: 20 });
    loopDelay.enable();
    const sample = async () => {
      const benchLoopDelayMaxMs = round(loopDelay.max / 1e6, 0);
      loopDelay.reset();
      samples.push({ ...(await takeSample(cluster, socketPath, startedAt, loadAverage1m())), benchLoopDelayMaxMs });
    };
    await sample();
    const probes = new ProbeTimer(
      cluster.nodes
        .filter((node) => node.port !== undefined)
        .flatMap((node) => ["/api/health", "/api/health/ready", "/api/health/live"].map((probePath) => ({ node: node.name, url: `http://127.0.0.1:${node.port ?? 0}${probePath}` }))),
    );
    probes.start();
    const sampler = setInterval(() => void sample().catch((error: unknown) => progress("soak", `sample failed: ${String(error)}`)), SAMPLE_EVERY_MS);

    for (let index = 0; index < SOCKETS; index++) sockets.push(await openSoakSocket(url, (accounts[index % UPLOADERS] as { token: string }).token, socketStats, recorder));
    progress("soak", `${socketStats.connected} sockets open; load for ${options.seconds} s`);
    const uploadStats: UploadStats = { retries: 0, resultLookups: 0 };
    const uploaders = accounts.map((account, index) => runUploader(url, account.token, index, state, recorder, uploadStats));
    const readers = Array.from({ length: READERS }, (_, index) => runReader(url, index, state, recorder, READER_PAUSE_MS));
    const ticker = setInterval(() => progress("soak", `${Math.round((Date.now() - startedAt) / 1000)} s: ${state.readyIds.length} items ready, ${recorder.failures.length} failures, load ${loadAverage1m()}`), 30_000);
    await delay(options.seconds * 1000);
    state.drainUntil = Date.now() + DRAIN_MS;
    state.stopping = true;
    const loadSeconds = (Date.now() - startedAt) / 1000;
    await Promise.all(readers);
    progress("soak", "time is up: the uploaders finish the items in hand");
    await Promise.all(uploaders);
    clearInterval(ticker);
    clearInterval(sampler);
    probes.stop();
    await sample();
    loopDelay.disable();
    for (const socket of sockets) socket.disconnect();
    // Let the nodes finish deleting what a finished upload leaves (tus state, temporary files).
    await delay(5000);

    const items = [...state.items.values()];
    const notReady = [...state.items].filter(([, item]) => item.status !== "ready").map(([id, item]) => `${id} ${item.status}`);
    const ids = new Set(state.items.keys());
    const bucket = bucketContents(cluster);
    const strayObjects = bucket.objectKeys.filter((key) => !ids.has(/^media\/([^/]+)\//.exec(key)?.[1] ?? ""));
    const strayNodeFiles = [...nodeFiles(cluster)].filter((file) => !filesBefore.has(file)).map((file) => path.relative(cluster.dir, file));
    const windowSeconds = Math.min(60, loadSeconds / 5);
    // The second minute of the load against its last. The first minute is warm-up (heaps grow to their working size,
    // pools fill, code is compiled, the workers take their first jobs): from 190 MiB at rest to 220-290 MiB. The drain
    // after the load (the workers finishing the backlog while the api nodes idle) is not compared either; every
    // sample stays in `samples`.
    const warmUpSeconds = windowSeconds;
    const underLoad = samples.filter((each) => each.atSeconds > warmUpSeconds && each.atSeconds <= loadSeconds);
    const rss = Object.fromEntries(cluster.nodes.map((node) => [node.name, trend(underLoad, (each) => each.nodes[node.name]?.rssMiB, windowSeconds)]));
    const fds = Object.fromEntries(cluster.nodes.map((node) => [node.name, trend(underLoad, (each) => each.nodes[node.name]?.fds, windowSeconds)]));
    const connections = trend(underLoad, (each) => each.primaryConnections, windowSeconds);
    // Not a goal: V8's heap in use and the memory outside it, to tell a growing JavaScript heap from native memory.
    const heap = Object.fromEntries(cluster.nodes.map((node) => [node.name, trend(underLoad, (each) => each.nodes[node.name]?.heapUsedMiB, windowSeconds)]));
    const external = Object.fromEntries(cluster.nodes.map((node) => [node.name, trend(underLoad, (each) => each.nodes[node.name]?.externalMiB, windowSeconds)]));
    const requestFailures = recorder.failures.filter((failure) => failure.route !== "tus upload (create + PATCHes)");
    const uploadFailures = recorder.failures.filter((failure) => failure.route === "tus upload (create + PATCHes)");
    const failedUploadIds = new Set(uploadFailures.flatMap((failure) => [.../\/api\/uploads\/(u[\w-]{21})/.exec(failure.detail)?.slice(1) ?? []]));
    const checks = {
      noFailedRequests: requestFailures.length === 0,
      noFailedUploads: uploadFailures.length === 0,
      everyItemReady: notReady.length === 0 && items.length > 0,
      rssNoGrowth: Object.values(rss).every((each) => each.ratio <= RSS_GROWTH_LIMIT),
      fdsSteady: Object.values(fds).every((each) => each.last <= each.first * RSS_GROWTH_LIMIT + 5),
      dbConnectionsSteady: connections.last <= connections.first * RSS_GROWTH_LIMIT + 2,
      nothingLeftBehind: strayObjects.length === 0 && strayNodeFiles.length === 0 && bucket.pendingMultipartUploads === 0,
    };
    const met = Object.values(checks).every(Boolean);
    for (const failure of recorder.failures) progress("soak", `failed: ${failure.at} ${failure.route} after ${failure.afterMs ?? "?"} ms: ${failure.detail}${failure.cause === undefined ? "" : ` (${failure.cause})`}`);
    progress("soak", `${items.length} items (${notReady.length} not ready), ${requestFailures.length} failed requests, ${uploadFailures.length} failed uploads; goal ${met ? "met" : "not met"}`);
    for (const [name, check] of Object.entries(checks)) progress("soak", `${check ? "ok  " : "FAIL"} ${name}`);
    writeReport(options.output, {
      benchmark: "soak",
      ...run,
      load: { seconds: options.seconds, measuredSeconds: round(loadSeconds, 1), uploaders: UPLOADERS, readers: READERS, readerPauseMs: READER_PAUSE_MS, sockets: SOCKETS, fixtures: SOAK_FIXTURES.map((each) => each.file) },
      items: { total: items.length, byKind: countBy(items.map((item) => item.kind)), notReady },
      routes: recorder.summary(),
      failures: { requests: requestFailures.slice(0, 50), requestCount: requestFailures.length, uploads: uploadFailures.slice(0, 50), uploadCount: uploadFailures.length },
      uploads: uploadStats,
      sockets: socketStats,
      // The longest the clients' own event loop was held up (per sample in `samples`): a late client times the wait as the server's.
      benchLoopDelayMaxMs: Math.max(0, ...samples.map((each) => each.benchLoopDelayMaxMs ?? 0)),
      // Each api node's probe paths timed directly every 2 s during the run, and what HAProxy's checks did.
      probes: probes.summary(),
      probeChecksNotOk: probes.checksNotOk(),
      haproxy: haproxyStateChanges(cluster),
      trends: { warmUpSeconds: round(warmUpSeconds, 1), windowSeconds: round(windowSeconds, 1), rssMiB: rss, openFds: fds, primaryConnections: connections, heapUsedMiB: heap, externalMiB: external },
      leftovers: {
        strayObjects,
        // tus state of uploads that failed part-way stays until UPLOAD_EXPIRY_SECONDS; anything else is a real leak.
        strayObjectsOfFailedUploads: strayObjects.filter((key) => failedUploadIds.has(key.split(".")[0] ?? "")),
        strayNodeFiles,
        pendingMultipartUploads: bucket.pendingMultipartUploads,
        objectsInBucket: bucket.objectKeys.length,
      },
      samples,
      checks,
      goal: { statement: "0 failed requests and uploads, every item ready, RSS last minute <= 1.2 x first, fds and db connections steady, nothing left behind", met },
    });
    printWrittenTo(options.output);
    if (!met) {
      const kept = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-soak-logs-"));
      await fs.promises.cp(path.join(cluster.dir, "logs"), kept, { recursive: true });
      progress("soak", `the nodes' logs are kept in ${kept}`);
    }
  } finally {
    for (const socket of sockets) socket.disconnect();
    await cluster.stop();
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

runMain(main);

/** Rounds of the processing benchmark on queued jobs, and the direct runs it compares with (bench/process.ts). */
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { JetStreamManager } from "nats";
import type { MediaJson } from "../lib/media/media-view";
import { BenchChild } from "./harness/children";
import { delay, loadAverage1m, progress, round } from "./harness/common";
import type { DirectResult, RecordedCommand } from "./process-protocol";
import type { Options, RoundFigures } from "./process-shared";
import { DIRECT_SCRIPT, EMBEDDED_QUEUED_DEADLINE_SECONDS, JOBS_STREAM, JOB_TIMEOUT_MS, START_TIMEOUT_MS, STOP_TIMEOUT_MS, summary } from "./process-shared";
import type { JobLog, ShoalNodeChild } from "./process-worker";
import { CpuWindow, ReadyWatcher, expectAllReady, getMedia, queuedRoundTimes, register, stagesOf, startShoal, upload } from "./process-worker";

export async function dropJobMessages(jetstream: JetStreamManager, fromSeq: number, ids: ReadonlySet<string>): Promise<number> {
  const last = (await jetstream.streams.info(JOBS_STREAM)).state.last_seq;
  let dropped = 0;
  for (let seq = fromSeq; seq <= last; seq++) {
    const message = await jetstream.streams.getMessage(JOBS_STREAM, { seq });
    // The channels adapter's JSON serializer: the payload { id, ownerId, kind }.
    const payload = JSON.parse(Buffer.from(message.data).toString("utf8")) as { id?: unknown };
    if (typeof payload.id === "string" && ids.has(payload.id)) {
      await jetstream.streams.deleteMessage(JOBS_STREAM, seq);
      dropped++;
    }
  }
  return dropped;
}

export interface QueuedRoundSetup {
  readonly gateway: ShoalNodeChild;
  readonly jobLog: JobLog;
  /** The services process (s3rver; MariaDB, Redis and NATS are its children), for the CPU figures. */
  readonly servicesPid: number | undefined;
  /** On the cluster's NATS: the warm-up items' job messages are taken out of the stream. */
  readonly jetstream: JetStreamManager;
  /** Starts worker processes whose subscriptions are held back (BENCH_DEFER_SUBSCRIBE=1), all at once. */
  startWorkers(count: number): Promise<ShoalNodeChild[]>;
  stopWorkers(workers: readonly ShoalNodeChild[]): Promise<void>;
}

/**
 * One cluster round on queued jobs, on a fresh account:
 *   1. with no worker process running, one warm-up file per worker process and then the measured files are
 *      uploaded (as fast as the gateway takes them); their job messages wait in JetStream, and every item must
 *      still be `uploaded` afterwards;
 *   2. the worker processes start (connected, subscriptions held back);
 *   3. each runs one warm-up job, its own warm-up item, through its processing service's channel handler
 *      (the worker's path: claim, fetch, process, store, complete), not from JetStream;
 *      The warm-up items' job messages are deleted from the stream right after their upload, so that only the
 *      measured jobs wait there (otherwise the first worker to subscribe would hold them, find the items
 *      finished and drop them, while it hands the measured ones back for later);
 *   4. all are told to subscribe at the same moment. The round lasts from that moment until the last
 *      measured `media:ready`.
 */
export async function queuedRound(
  scope: string,
  setup: QueuedRoundSetup,
  username: string,
  workerCount: number,
  warmups: readonly string[],
  measured: readonly string[],
  mime: string,
): Promise<{ figures: RoundFigures }> {
  const baseUrl = setup.gateway.baseUrl as string;
  const { token, userId } = await register(baseUrl, username);
  const watcher = await ReadyWatcher.connect(baseUrl, token);
  const kind = mime.startsWith("image/") ? "image" : "video";
  let workers: ShoalNodeChild[] = [];
  try {
    // 1. Everything uploaded before any worker process runs.
    const uploadsBegan = performance.now();
    const lastBefore = (await setup.jetstream.streams.info(JOBS_STREAM)).state.last_seq;
    const warmItems: Array<{ id: string }> = [];
    for (const file of warmups.slice(0, workerCount)) warmItems.push(await upload(baseUrl, token, file, mime));
    const dropped = await dropJobMessages(setup.jetstream, lastBefore + 1, new Set(warmItems.map((item) => item.id)));
    if (dropped !== warmItems.length) throw new Error(`found ${dropped} of the ${warmItems.length} warm-up job messages in ${JOBS_STREAM}`);
    const uploads: Array<{ id: string; acceptedAt: number; seconds: number }> = [];
    for (const file of measured) uploads.push(await upload(baseUrl, token, file, mime));
    const uploadPhaseSeconds = (performance.now() - uploadsBegan) / 1000;
    const statuses = await Promise.all([...warmItems, ...uploads].map((entry) => getMedia(baseUrl, token, entry.id).then((item) => item.status)));
    const notWaiting = statuses.filter((status) => status !== "uploaded");
    if (notWaiting.length > 0) throw new Error(`${notWaiting.length} item(s) not 'uploaded' before any worker process ran: ${notWaiting.join(", ")}`);
    progress(scope, `${warmItems.length} warm-up + ${uploads.length} measured jobs uploaded in ${uploadPhaseSeconds.toFixed(1)} s with no worker process running; starting ${workerCount} worker process(es)`);

    // 2. and 3. Start the worker processes, and warm each up on its own item.
    const startBegan = performance.now();
    workers = await setup.startWorkers(workerCount);
    const workerStartSeconds = (performance.now() - startBegan) / 1000;
    const warmBegan = performance.now();
    await Promise.all(workers.map((worker, index) => worker.child.command({ name: "warmup", job: { id: (warmItems[index] as { id: string }).id, ownerId: userId, kind } }, JOB_TIMEOUT_MS)));
    await Promise.all(warmItems.map((item) => watcher.wait(item.id)));
    const warmupSeconds = (performance.now() - warmBegan) / 1000;
    progress(scope, `worker process(es) started in ${workerStartSeconds.toFixed(1)} s and warmed up in ${warmupSeconds.toFixed(1)} s; subscribing`);

    // 4. Measured: from "subscribe" sent to every worker process until the last item is ready.
    const loadAverage1mBefore = loadAverage1m();
    const cpu = new CpuWindow(
      new Map<string, number | undefined>([
        ["gateway", setup.gateway.child.pid],
        ...workers.map((worker, index): [string, number | undefined] => [`worker${index + 1}`, worker.child.pid]),
        ["s3rverProcess", setup.servicesPid],
      ]),
    );
    const go = performance.now();
    const subscribed = workers.map((worker) => worker.child.command({ name: "subscribe" }, START_TIMEOUT_MS).then(() => (performance.now() - go) / 1000));
    const ready = await Promise.all(uploads.map((entry) => watcher.wait(entry.id)));
    const cpuSecondsPerSecond = cpu.finish();
    const subscribedAfterSeconds = await Promise.all(subscribed);
    const last = Math.max(...ready);
    await expectAllReady(baseUrl, token, uploads);
    const { waited, processing, finishing, starts } = stagesOf(watcher, uploads, ready, () => go);
    const fromFirstStart = starts.length === uploads.length ? (last - Math.min(...starts)) / 1000 : undefined;
    const jobsPerWorker: Record<string, number> = Object.fromEntries(workers.map((_worker, index) => [`worker${index + 1}`, 0]));
    let unknown = 0;
    for (const entry of uploads) {
      const index = workers.findIndex((worker) => worker.nodeId === setup.jobLog.nodeOf(entry.id));
      if (index < 0) unknown++;
      else jobsPerWorker[`worker${index + 1}`] = (jobsPerWorker[`worker${index + 1}`] ?? 0) + 1;
    }
    const uploadSeconds = uploads.map((entry) => entry.seconds);
    return {
      figures: {
        ...queuedRoundTimes(measured.length, go, ready),
        loadAverage1mBefore,
        uploadSeconds: { p50: summary(uploadSeconds).p50, max: summary(uploadSeconds).max, total: round(uploadSeconds.reduce((a, b) => a + b, 0), 2) },
        extra: {
          measured: "from 'subscribe' sent to every (started, warmed-up) worker process until the last measured media:ready; the jobs were queued in JetStream before",
          fromFirstJobStart:
            fromFirstStart === undefined
              ? null
              : { wallSeconds: round(fromFirstStart, 2), jobsPerMinute: round((measured.length / fromFirstStart) * 60, 1), measured: "first measured 'processing' event -> last measured media:ready" },
          subscribedAfterSeconds: subscribedAfterSeconds.map((value) => round(value, 3)),
          stagesSeconds: {
            jobsWithAllStages: processing.length,
            startedAfterSubscribe: summary(waited),
            processorRun: summary(processing),
            storingToReady: summary(finishing),
          },
          uploadPhaseSeconds: round(uploadPhaseSeconds, 2),
          workerStartSeconds: round(workerStartSeconds, 2),
          warmupJobs: warmItems.length,
          warmupSeconds: round(warmupSeconds, 2),
          cpuSecondsPerSecond,
          jobsPerWorker: unknown > 0 ? { ...jobsPerWorker, unknown } : jobsPerWorker,
        },
      },
    };
  } finally {
    watcher.close();
    await setup.stopWorkers(workers);
  }
}

/**
 * One embedded round on queued jobs, on a node of its own (fresh data directory, the given settings) started
 * with its channel subscription held back (BENCH_DEFER_SUBSCRIBE=1):
 *   1. one warm-up file and the measured files are uploaded; the in-process channel has no subscriber, so their
 *      job messages go nowhere and every item stays `uploaded` (checked);
 *   2. the node subscribes and runs the warm-up job through its channel handler;
 *   3. once the measured items are older than the node's JOB_DEADLINE_SECONDS, a reconciler round runs on the
 *      node (the node's own recovery path): it publishes every measured item again, now to the subscribed
 *      worker. The round lasts from that command until the last measured media:ready.
 */
export async function embeddedQueuedRound(
  scope: string,
  nodeEnv: Record<string, string>,
  profDir: string | undefined,
  username: string,
  warmup: string,
  measured: readonly string[],
  mime: string,
): Promise<{ figures: RoundFigures; sample: MediaJson }> {
  const node = await startShoal(`embedded-${username}`, `bench-embedded-${username}`, {
    ...nodeEnv,
    BENCH_DEFER_SUBSCRIBE: "1",
    JOB_DEADLINE_SECONDS: String(EMBEDDED_QUEUED_DEADLINE_SECONDS),
    JOB_RECONCILE_INTERVAL_SECONDS: "3600",
  }, profDir);
  const baseUrl = node.baseUrl as string;
  const kind = mime.startsWith("image/") ? "image" : "video";
  let watcher: ReadyWatcher | undefined;
  try {
    const { token, userId } = await register(baseUrl, username);
    watcher = await ReadyWatcher.connect(baseUrl, token);
    const warm = await upload(baseUrl, token, warmup, mime);
    const uploads: Array<{ id: string; acceptedAt: number; seconds: number }> = [];
    for (const file of measured) uploads.push(await upload(baseUrl, token, file, mime));
    const statuses = await Promise.all([warm, ...uploads].map((entry) => getMedia(baseUrl, token, entry.id).then((item) => item.status)));
    const notWaiting = statuses.filter((status) => status !== "uploaded");
    if (notWaiting.length > 0) throw new Error(`${notWaiting.length} item(s) not 'uploaded' before the node subscribed: ${notWaiting.join(", ")}`);

    await node.child.command({ name: "subscribe" }, START_TIMEOUT_MS);
    await node.child.command({ name: "warmup", job: { id: warm.id, ownerId: userId, kind } }, JOB_TIMEOUT_MS);
    await watcher.wait(warm.id);
    const lastAccepted = Math.max(...uploads.map((entry) => entry.acceptedAt));
    await delay(Math.max(0, lastAccepted + EMBEDDED_QUEUED_DEADLINE_SECONDS * 1000 + 250 - performance.now()));
    progress(scope, `1 warm-up + ${uploads.length} measured jobs uploaded while the node was not subscribed; warm-up done; reconciling`);

    const loadAverage1mBefore = loadAverage1m();
    const cpu = new CpuWindow(new Map([["node", node.child.pid]]));
    const go = performance.now();
    const answer = await node.child.command({ name: "reconcile" }, JOB_TIMEOUT_MS);
    const reconcileSeconds = (performance.now() - go) / 1000;
    if (answer.requeued !== uploads.length) throw new Error(`the reconciler published ${answer.requeued} item(s), not the ${uploads.length} measured ones`);
    const ready = await Promise.all(uploads.map((entry) => (watcher as ReadyWatcher).wait(entry.id)));
    const cpuSecondsPerSecond = cpu.finish();
    const items = await expectAllReady(baseUrl, token, uploads);
    const { waited, processing, finishing } = stagesOf(watcher, uploads, ready, () => go);
    return {
      figures: {
        ...queuedRoundTimes(measured.length, go, ready),
        loadAverage1mBefore,
        extra: {
          measured: "from the reconciler round started on the node (which publishes the queued jobs to its now subscribed worker) until the last measured media:ready",
          reconcileSeconds: round(reconcileSeconds, 3),
          stagesSeconds: {
            jobsWithAllStages: processing.length,
            startedAfterReconcile: summary(waited),
            processorRun: summary(processing),
            storingToReady: summary(finishing),
          },
          cpuSecondsPerSecond,
        },
      },
      sample: items[0] as MediaJson,
    };
  } finally {
    watcher?.close();
    await node.child.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Direct

export async function directRound(
  scope: string,
  kind: "image" | "video",
  files: readonly string[],
  options: Options,
  workDir: string,
): Promise<{ figures: RoundFigures; commands?: readonly RecordedCommand[] }> {
  const loadAverage1mBefore = loadAverage1m();
  const child = new BenchChild(
    `direct ${kind}`,
    DIRECT_SCRIPT,
    {
      BENCH_DIRECT_KIND: kind,
      BENCH_DIRECT_FILES: JSON.stringify(files),
      BENCH_DIRECT_WARMUP: "1",
      BENCH_DIRECT_CONCURRENCY: String(options.concurrency),
      BENCH_DIRECT_FFMPEG_THREADS: String(options.ffmpegThreads),
      BENCH_DIRECT_WORK_DIR: workDir,
    },
    { channel: "lines", stopTimeoutMs: STOP_TIMEOUT_MS },
  );
  const answer = child.firstLine<DirectResult>("benchDirect", JOB_TIMEOUT_MS * 2);
  try {
    const result = await answer;
    progress(scope, `${result.jobs} jobs in ${result.wallSeconds.toFixed(2)} s`);
    return {
      figures: {
        jobs: result.jobs,
        wallSeconds: round(result.wallSeconds, 2),
        jobsPerMinute: round((result.jobs / result.wallSeconds) * 60, 1),
        jobSeconds: summary(result.jobSeconds),
        loadAverage1mBefore,
        extra: {
          cpuSeconds: { process: round(result.processCpuSeconds, 2), ffmpegChildren: round(result.childCpuSeconds, 2) },
        },
      },
      commands: result.commands,
    };
  } finally {
    await child.stop();
  }
}

/**
 * The machine's own scaling for the image work, with no Shoal node, storage or broker: `processes` direct
 * processes (bench/process-direct.ts, one image at a time each, one libvips thread as the worker has) split
 * the measured files between them. Each warms up first; all start their measured jobs on one "go" line.
 */
export async function ceilingRound(scope: string, processes: number, files: readonly string[], workDir: string): Promise<RoundFigures> {
  const [warmup, ...measured] = files as [string, ...string[]];
  const loadAverage1mBefore = loadAverage1m();
  const children = Array.from(
    { length: processes },
    (_, index) =>
      new BenchChild(
        `direct image ${index + 1}/${processes}`,
        DIRECT_SCRIPT,
        {
          BENCH_DIRECT_KIND: "image",
          BENCH_DIRECT_FILES: JSON.stringify([warmup, ...measured.filter((_file, at) => at % processes === index)]),
          BENCH_DIRECT_WARMUP: "1",
          BENCH_DIRECT_CONCURRENCY: "1",
          BENCH_DIRECT_START_ON_GO: "1",
          BENCH_DIRECT_WORK_DIR: path.join(workDir, `process-${index + 1}`),
        },
        { channel: "lines", stopTimeoutMs: STOP_TIMEOUT_MS },
      ),
  );
  try {
    await Promise.all(children.map((child) => child.firstLine<true>("benchDirectWarm", JOB_TIMEOUT_MS)));
    const answers = children.map((child) => child.firstLine<DirectResult>("benchDirect", JOB_TIMEOUT_MS * 2));
    // The machine only: a direct process may have exited by the end of the window (each reports its own CPU).
    const cpu = new CpuWindow(new Map());
    for (const child of children) child.writeLine("go");
    const results = await Promise.all(answers);
    const cpuSecondsPerSecond = cpu.finish();
    const jobs = results.reduce((sum, result) => sum + result.jobs, 0);
    // Every process started on the same line; the round ends with the last one.
    const wallSeconds = Math.max(...results.map((result) => result.wallSeconds));
    progress(scope, `${jobs} jobs in ${wallSeconds.toFixed(2)} s over ${processes} process(es)`);
    return {
      jobs,
      wallSeconds: round(wallSeconds, 2),
      jobsPerMinute: round((jobs / wallSeconds) * 60, 1),
      jobSeconds: summary(results.flatMap((result) => result.jobSeconds)),
      loadAverage1mBefore,
      extra: {
        jobsPerProcess: results.map((result) => result.jobs),
        wallSecondsPerProcess: results.map((result) => round(result.wallSeconds, 2)),
        cpuSeconds: results.map((result) => round(result.processCpuSeconds, 2)),
        cpuSecondsPerSecond: { ...Object.fromEntries(results.map((result, index) => [`direct${index + 1}`, round(result.processCpuSeconds / wallSeconds, 2)])), machine: cpuSecondsPerSecond.machine },
      },
    };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
}


/**
 * Processing benchmark: `npm run bench:process` (see bench/README.md).
 *
 * One run, on this machine; every Shoal node, every direct run and the cluster's services are child
 * processes, and the parent only uploads, listens and times:
 *   (a) images through the worker, embedded mode: a 12-megapixel JPEG uploaded with POST /api/media
 *       (multipart, bearer token) to a Shoal node (bench/harness/shoal-node.ts, BENCH_ROLE=shoal), timed from
 *       "upload accepted" (the 201) until socket.io `media:ready`; all variants (thumb, display,
 *       display-jpeg, placeholder);
 *   (b) the same images through processImage() called directly (bench/process-direct.ts), same options;
 *   (c) a video through the worker, embedded (test/fixtures/video/mp4_h264_aac51_1080p60.mp4);
 *   (d) the same ffmpeg/ffprobe command lines run directly: recorded from transcodeVideo() on a warm-up
 *       file and replayed for each measured file (bench/process-direct.ts);
 *   (e) cluster mode, images: one gateway node without processing (SERVICES=api,users,media,site) and
 *       either one or two worker processes (SERVICES=processing, WORKER_CONCURRENCY=1, one thread per
 *       job), on a private MariaDB, Redis, NATS JetStream and S3 (bench/harness/services.ts). The jobs
 *       are uploaded while no worker process runs and wait in JetStream; then the worker process(es)
 *       start, each does one warm-up job, and all subscribe at once: the round lasts from that moment
 *       until the last `media:ready` (worker throughput on queued jobs);
 *   (f) the same for video (FFMPEG_THREADS=1 on the workers);
 *   (e/f with "u") the previous measurement of (e)/(f): the workers run while the jobs are uploaded, timed
 *       from the first upload accepted until the last `media:ready` (BENCH_CLUSTER_UPLOADING=0 leaves it out).
 * Prints jobs per minute, a/b, c/d and two worker processes / one; writes bench/results/process.json.
 *
 * Environment: BENCH_JOBS (measured image jobs per round, default 24), BENCH_VIDEO_JOBS (measured video
 * jobs per round, default 8), BENCH_CONCURRENCY (WORKER_CONCURRENCY of the embedded node and jobs at once
 * in (b)/(d), default 2 = cores), BENCH_FFMPEG_THREADS (FFMPEG_THREADS of the embedded node and of (d),
 * default 2), BENCH_REPEATS (default 2: each pair of rounds runs that often, in alternating order),
 * BENCH_PARTS (default `embedded,cluster`), BENCH_CLUSTER_VIDEO (default 1; 0 leaves out (f)),
 * BENCH_CLUSTER_UPLOADING (default 1; 0 leaves out the upload -> ready rounds of the cluster part), BENCH_CPU_PROF_DIR (run the Shoal nodes with --cpu-prof), BENCH_OUTPUT (default
 * bench/results/process.json).
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { connect } from "nats";
import type { MediaJson } from "../lib/media/media-view";
import { startServicesChild, waitForHealth } from "./harness/children";
import { delay, progress, runMain, startRun, stopOnInterrupt } from "./harness/common";
import type { RecordedCommand } from "./process-protocol";
import type { RoundFigures, RoundKey } from "./process-shared";
import { CLUSTER_WORKER, GATEWAY_SERVICES, IMAGE_HEIGHT, IMAGE_WIDTH, JOBS_STREAM, JPEG_QUALITY, SERVICES_STOP_TIMEOUT_MS, START_TIMEOUT_MS, VIDEO_FIXTURE, WARMUP_POOL, makeImages, makeVideos, readOptions } from "./process-shared";
import type { ShoalNodeChild, WorkerRoundSetup } from "./process-worker";
import { JobLog, startShoal, workerRound } from "./process-worker";
import type { QueuedRoundSetup } from "./process-rounds";
import { ceilingRound, directRound, embeddedQueuedRound, queuedRound } from "./process-rounds";
import { describe, reportRun } from "./process-report";

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = readOptions();
  const { machine, date, code } = startRun(
    `${options.imageJobs} image jobs and ${options.videoJobs} video jobs per round, ${options.repeats} repeat(s); ` +
      `${[options.embedded ? "embedded (a)-(d)" : "", options.cluster ? `cluster (e)${options.clusterVideo ? ", (f)" : ""}` : ""].filter(Boolean).join(", ")}`,
    { showLoad: true },
  );

  const root = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-bench-process-"));
  const cleanup: Array<() => Promise<void>> = [() => fs.promises.rm(root, { recursive: true, force: true })];
  stopOnInterrupt(undefined, async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  });

  try {
    const inputs = path.join(root, "inputs");
    fs.mkdirSync(inputs);
    progress("bench", `making ${WARMUP_POOL + options.imageJobs} ${IMAGE_WIDTH}x${IMAGE_HEIGHT} JPEGs (quality ${JPEG_QUALITY}) and ${WARMUP_POOL + options.videoJobs} video copies`);
    const images = await makeImages(inputs, WARMUP_POOL + options.imageJobs);
    const videos = makeVideos(inputs, WARMUP_POOL + options.videoJobs);
    progress("bench", `image ${(images.bytes / 1e6).toFixed(1)} MB, video ${(fs.statSync(VIDEO_FIXTURE).size / 1e6).toFixed(1)} MB`);
    const imageWarmups = images.files.slice(0, WARMUP_POOL);
    const imageMeasured = images.files.slice(WARMUP_POOL);
    const videoWarmups = videos.slice(0, WARMUP_POOL);
    const videoMeasured = videos.slice(WARMUP_POOL);
    // The direct runs take the first warm-up file as theirs, then the same measured files.
    const directImages = [images.files[0] as string, ...imageMeasured];
    const directVideos = [videos[0] as string, ...videoMeasured];

    const all: Record<RoundKey, RoundFigures[]> = { a: [], b: [], c: [], d: [], au: [], cu: [], e1: [], e2: [], f1: [], f2: [], e1u: [], e2u: [], f1u: [], f2u: [], g1: [], g2: [] };
    let sampleImage: MediaJson | undefined;
    let sampleVideo: MediaJson | undefined;
    let videoCommands: readonly RecordedCommand[] | undefined;
    const runPairs = async (pairs: ReadonlyArray<readonly [RoundKey, RoundKey]>, run: (key: RoundKey, repeat: number) => Promise<RoundFigures>, labels: Record<string, string>) => {
      for (let repeat = 0; repeat < options.repeats; repeat++) {
        for (const pair of pairs) {
          // Alternate the order within each pair, so that a drift in the machine's load favours neither side.
          const order = repeat % 2 === 0 ? pair : ([pair[1], pair[0]] as const);
          for (const key of order) {
            progress(key, `repeat ${repeat + 1}/${options.repeats}: ${labels[key]}`);
            const figures = await run(key, repeat);
            all[key].push(figures);
            progress(key, describe(figures));
          }
        }
      }
    };

    // --- Embedded: (a)-(d) ------------------------------------------------------------------
    const embeddedQueued = "jobs uploaded while the node's worker was not subscribed, then timed from a reconciler round on the node until the last media:ready";
    const embeddedLabels: Record<string, string> = {
      a: `(a) image via the embedded worker (WORKER_CONCURRENCY=${options.concurrency}); ${embeddedQueued}`,
      b: `(b) image via processImage() in a child process, same options, ${options.concurrency} at once`,
      c: `(c) video via the embedded worker (WORKER_CONCURRENCY=${options.concurrency}, FFMPEG_THREADS=${options.ffmpegThreads}); ${embeddedQueued}`,
      d: `(d) video: the worker's ffprobe/ffmpeg command lines (recorded) run directly, ${options.concurrency} jobs at once`,
      au: `(au) image via POST /api/media to the embedded worker (WORKER_CONCURRENCY=${options.concurrency}) while uploading, accepted -> media:ready (the previous measurement)`,
      cu: `(cu) video via POST /api/media to the embedded worker (WORKER_CONCURRENCY=${options.concurrency}, FFMPEG_THREADS=${options.ffmpegThreads}) while uploading, accepted -> media:ready (the previous measurement)`,
    };
    if (options.embedded) {
      const embeddedEnv = (dataDir: string) => ({
        SHOAL_MODE: "embedded",
        SHOAL_DATA_DIR: dataDir,
        SHOAL_SECRET: randomBytes(32).toString("hex"),
        WORKER_CONCURRENCY: String(options.concurrency),
        FFMPEG_THREADS: String(options.ffmpegThreads),
      });
      progress("embedded", `starting embedded Shoal node for (au)/(cu), WORKER_CONCURRENCY=${options.concurrency}, FFMPEG_THREADS=${options.ffmpegThreads}`);
      const node = await startShoal("embedded", "bench-embedded", embeddedEnv(fs.mkdtempSync(path.join(root, "embedded-"))), options.cpuProfDir);
      cleanup.push(() => node.child.stop());
      const setup: WorkerRoundSetup = { gateway: node, cpu: new Map([["node", node.child.pid]]) };
      await runPairs(
        [
          ["a", "b"],
          ["c", "d"],
          ["au", "cu"],
        ],
        async (key, repeat) => {
          if (key === "a" || key === "c") {
            const image = key === "a";
            progress(key, `starting an embedded Shoal node of its own, subscription held back`);
            const result = await embeddedQueuedRound(
              key,
              embeddedEnv(fs.mkdtempSync(path.join(root, `embedded-${key}-${repeat}-`))),
              options.cpuProfDir,
              `bench${key}${repeat}`,
              image ? (imageWarmups[0] as string) : (videoWarmups[0] as string),
              image ? imageMeasured : videoMeasured,
              image ? "image/jpeg" : "video/mp4",
            );
            if (image) sampleImage ??= result.sample;
            else sampleVideo ??= result.sample;
            return result.figures;
          }
          if (key === "au" || key === "cu") {
            const image = key === "au";
            const result = await workerRound(key, setup, `bench${key}${repeat}`, image ? imageWarmups : videoWarmups, image ? imageMeasured : videoMeasured, image ? "image/jpeg" : "video/mp4");
            if (image) sampleImage ??= result.sample;
            else sampleVideo ??= result.sample;
            return result.figures;
          }
          const direct = await directRound(key, key === "b" ? "image" : "video", key === "b" ? directImages : directVideos, options, path.join(root, `direct-${key}-${repeat}`));
          videoCommands ??= direct.commands;
          return direct.figures;
        },
        embeddedLabels,
      );
      await node.child.stop();
    }

    // --- Cluster: (e) images and (f) video, one worker process against two -------------------
    const clusterWorker = "WORKER_CONCURRENCY=1, FFMPEG_THREADS=1";
    const queued = "jobs uploaded with no worker process running, then timed from the started and warmed-up workers subscribing until the last media:ready";
    const uploading = "worker(s) running during the uploads, timed from the first upload accepted until the last media:ready (the previous measurement)";
    const clusterLabels: Record<string, string> = {
      e1: `(e1) image, cluster: gateway node + 1 worker process (${clusterWorker}); ${queued}`,
      e2: `(e2) image, cluster: gateway node + 2 worker processes (each ${clusterWorker}); ${queued}`,
      f1: `(f1) video, cluster: gateway node + 1 worker process (${clusterWorker}); ${queued}`,
      f2: `(f2) video, cluster: gateway node + 2 worker processes (each ${clusterWorker}); ${queued}`,
      e1u: `(e1u) image, cluster: gateway node + 1 worker process (${clusterWorker}); ${uploading}`,
      e2u: `(e2u) image, cluster: gateway node + 2 worker processes (each ${clusterWorker}); ${uploading}`,
      f1u: `(f1u) video, cluster: gateway node + 1 worker process (${clusterWorker}); ${uploading}`,
      f2u: `(f2u) video, cluster: gateway node + 2 worker processes (each ${clusterWorker}); ${uploading}`,
      g1: "(g1) image via processImage() in 1 direct process, one image at a time, nothing else running",
      g2: "(g2) image via processImage() in 2 direct processes at once, one image at a time each, nothing else running",
    };
    if (options.cluster && options.clusterCeiling) {
      // Before the cluster's services start: what two processes doing only this work get from the machine.
      await runPairs([["g1", "g2"]], (key, repeat) => ceilingRound(key, key === "g2" ? 2 : 1, directImages, path.join(root, `ceiling-${key}-${repeat}`)), clusterLabels);
    }
    if (options.cluster) {
      progress("cluster", "starting private MariaDB primary, Redis, NATS (JetStream) and S3 (s3rver) in a child process");
      const services = startServicesChild({ replicas: 0, watchWindow: false, startTimeoutMs: START_TIMEOUT_MS, stopTimeoutMs: SERVICES_STOP_TIMEOUT_MS });
      cleanup.push(() => services.child.stop());
      const servicesReady = await services.ready;
      const clusterEnv = { ...servicesReady.env, SHOAL_DATA_DIR: fs.mkdtempSync(path.join(root, "cluster-")) };
      progress("cluster", `starting the gateway node (SERVICES=${GATEWAY_SERVICES})`);
      const gateway = await startShoal("gateway", "bench-gateway", { ...clusterEnv, SERVICES: GATEWAY_SERVICES }, options.cpuProfDir);
      cleanup.push(() => gateway.child.stop());
      await waitForHealth("cluster", "gateway", gateway.baseUrl as string, START_TIMEOUT_MS);
      const nats = await connect({ servers: servicesReady.env.NATS_URL });
      cleanup.push(() => nats.close());
      const jetstream = await nats.jetstreamManager();
      // The gateway's media service makes the job streams once connected, before any worker has subscribed.
      for (let waited = 0; !(await jetstream.streams.info(JOBS_STREAM).then(() => true, () => false)); waited += 100) {
        if (waited > 30_000) throw new Error(`the gateway did not make the JetStream stream ${JOBS_STREAM} within 30 s`);
        await delay(100);
      }
      const jobLog = new JobLog();
      let workersStarted = 0;
      // Worker processes live for one round: started (all at once) for it, stopped after it.
      const startWorkers = async (count: number, deferSubscribe: boolean): Promise<ShoalNodeChild[]> => {
        const indices = Array.from({ length: count }, () => ++workersStarted);
        progress("cluster", `starting worker process(es) ${indices.join(", ")} (SERVICES=processing, ${clusterWorker}${deferSubscribe ? ", subscription held back" : ""})`);
        const workers = await Promise.all(
          indices.map((index) => {
            const nodeId = `bench-worker-${index}`;
            return startShoal(
              nodeId,
              nodeId,
              { ...clusterEnv, SERVICES: "processing", BENCH_REPORT_JOBS: "1", ...(deferSubscribe ? { BENCH_DEFER_SUBSCRIBE: "1" } : {}), ...CLUSTER_WORKER },
              options.cpuProfDir,
            );
          }),
        );
        for (const worker of workers) {
          jobLog.listen(worker);
          cleanup.push(() => worker.child.stop());
        }
        return workers;
      };
      const stopWorkers = async (workers: readonly ShoalNodeChild[]): Promise<void> => {
        await Promise.all(workers.map((worker) => worker.child.stop()));
      };
      const pairs: Array<readonly [RoundKey, RoundKey]> = [["e1", "e2"]];
      if (options.clusterVideo) pairs.push(["f1", "f2"]);
      if (options.clusterUploading) {
        pairs.push(["e1u", "e2u"]);
        if (options.clusterVideo) pairs.push(["f1u", "f2u"]);
      }
      await runPairs(
        pairs,
        async (key, repeat) => {
          const count = key[1] === "2" ? 2 : 1;
          const image = key.startsWith("e");
          const warmups = image ? imageWarmups : videoWarmups;
          const files = image ? imageMeasured : videoMeasured;
          const mime = image ? "image/jpeg" : "video/mp4";
          if (!key.endsWith("u")) {
            const setup: QueuedRoundSetup = { gateway, jobLog, jetstream, servicesPid: services.child.pid, startWorkers: (workers) => startWorkers(workers, true), stopWorkers };
            return (await queuedRound(key, setup, `bench${key}${repeat}`, count, warmups, files, mime)).figures;
          }
          const workers = await startWorkers(count, false);
          try {
            const cpu = new Map<string, number | undefined>([
              ["gateway", gateway.child.pid],
              ...workers.map((worker, index): [string, number | undefined] => [`worker${index + 1}`, worker.child.pid]),
              ["s3rverProcess", services.child.pid],
            ]);
            return (await workerRound(key, { gateway, workers, jobLog, cpu }, `bench${key}${repeat}`, warmups, files, mime)).figures;
          } finally {
            await stopWorkers(workers);
          }
        },
        clusterLabels,
      );
    }
    reportRun({ options, machine, date, code, all, images, sampleImage, sampleVideo, videoCommands, embeddedLabels, clusterLabels });
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  }
}

runMain(main);

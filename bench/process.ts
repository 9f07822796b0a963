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
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { connect } from "nats";
import type { JetStreamManager } from "nats";
import sharp from "sharp";
import { io } from "socket.io-client";
import type { Socket } from "socket.io-client";
import { MEDIA_JOBS_CHANNEL } from "../lib/service-contracts";
import type { MediaJson } from "../lib/media/media-view";
import { ffmpegBinaries } from "../lib/processing/ffmpeg-binaries";
import { BenchChild, ShoalChild, startServicesChild, waitForHealth } from "./harness/children";
import {
  PROJECT_ROOT,
  cpuProfDirFromEnv,
  delay,
  loadAverage1m,
  machineBusySeconds,
  numberFromEnv,
  outputFromEnv,
  printWrittenTo,
  procCpuSeconds,
  progress,
  registerAccount,
  round,
  runMain,
  startRun,
  stopOnInterrupt,
  writeReport,
} from "./harness/common";
import type { DirectResult, RecordedCommand } from "./process-protocol";
import type { JobLine } from "./harness/shoal-node";

const DIRECT_SCRIPT = path.join(__dirname, "process-direct.ts");
const VIDEO_FIXTURE = path.join(PROJECT_ROOT, "test/fixtures/video/mp4_h264_aac51_1080p60.mp4");
const IMAGE_WIDTH = 4000;
const IMAGE_HEIGHT = 3000;
const JPEG_QUALITY = 90;
/** Files set aside for warm-up jobs; the measured files come after them. */
const WARMUP_POOL = 6;
const START_TIMEOUT_MS = 180_000;
const JOB_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 15_000;
const SERVICES_STOP_TIMEOUT_MS = 30_000;
/** JOB_DEADLINE_SECONDS of the embedded nodes of (a)/(c): how old a queued item must be for the reconciler to publish it again. */
const EMBEDDED_QUEUED_DEADLINE_SECONDS = 5;
const GOALS = { aOverB: 0.9, cOverD: 0.95, twoOverOne: 1.7 } as const;
/** The cluster worker processes: one job at a time, one thread per job (sharp already uses one). */
const CLUSTER_WORKER = { WORKER_CONCURRENCY: "1", FFMPEG_THREADS: "1" } as const;
const GATEWAY_SERVICES = "api,users,media,site";
/** The JetStream stream of the job channel as the NATS adapter names it: prefixed with the broker namespace, dots as underscores. */
const JOBS_STREAM = `shoal.${MEDIA_JOBS_CHANNEL}`.split(".").join("_");

/**
 * a, c: embedded, jobs queued before the worker subscribes; au, cu: embedded, worker running while the jobs are uploaded;
 * e1, e2, f1, f2: cluster, jobs queued before the workers start; e1u, e2u, f1u, f2u: cluster, workers running while
 * the jobs are uploaded; g1, g2: the machine's own scaling, processImage() in one direct process against two.
 */
type RoundKey = "a" | "b" | "c" | "d" | "au" | "cu" | "e1" | "e2" | "f1" | "f2" | "e1u" | "e2u" | "f1u" | "f2u" | "g1" | "g2";

interface Options {
  readonly repeats: number;
  readonly imageJobs: number;
  readonly videoJobs: number;
  readonly concurrency: number;
  readonly ffmpegThreads: number;
  readonly embedded: boolean;
  readonly cluster: boolean;
  readonly clusterVideo: boolean;
  readonly clusterUploading: boolean;
  readonly clusterCeiling: boolean;
  readonly cpuProfDir: string | undefined;
  readonly output: string;
}

interface Summary {
  readonly p50: number;
  readonly max: number;
  readonly mean: number;
}

interface RoundFigures {
  readonly jobs: number;
  /** Worker rounds: first upload accepted -> last ready; cluster rounds with queued jobs: workers told to subscribe -> last ready. */
  readonly wallSeconds: number;
  readonly jobsPerMinute: number;
  /** Per job: accepted -> ready (worker), subscribe -> ready (cluster, queued jobs), or the job's own run time (direct). */
  readonly jobSeconds: Summary;
  readonly loadAverage1mBefore: number;
  /** Worker rounds: how long each POST /api/media took (client side). */
  readonly uploadSeconds?: { readonly p50: number; readonly max: number; readonly total: number };
  readonly extra?: Record<string, unknown>;
}

interface Combined {
  /** All repeats together: their jobs over their summed wall time. */
  readonly jobsPerMinute: number;
  readonly jobs: number;
  readonly wallSeconds: number;
  readonly perRepeat: readonly RoundFigures[];
}

function combine(rounds: readonly RoundFigures[]): Combined {
  const jobs = rounds.reduce((sum, entry) => sum + entry.jobs, 0);
  const wallSeconds = rounds.reduce((sum, entry) => sum + entry.wallSeconds, 0);
  return { jobsPerMinute: wallSeconds > 0 ? round((jobs / wallSeconds) * 60, 1) : 0, jobs, wallSeconds: round(wallSeconds, 2), perRepeat: rounds };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function readOptions(): Options {
  const parts = (process.env.BENCH_PARTS ?? "embedded,cluster").split(",").map((part) => part.trim()).filter((part) => part !== "");
  for (const part of parts) if (part !== "embedded" && part !== "cluster") throw new Error(`BENCH_PARTS: unknown part ${JSON.stringify(part)} (embedded, cluster)`);
  if (parts.length === 0) throw new Error("BENCH_PARTS names no part");
  const clusterVideo = process.env.BENCH_CLUSTER_VIDEO?.trim() ?? "1";
  if (clusterVideo !== "0" && clusterVideo !== "1") throw new Error(`BENCH_CLUSTER_VIDEO must be 0 or 1 (got ${JSON.stringify(clusterVideo)})`);
  const clusterUploading = process.env.BENCH_CLUSTER_UPLOADING?.trim() ?? "1";
  if (clusterUploading !== "0" && clusterUploading !== "1") throw new Error(`BENCH_CLUSTER_UPLOADING must be 0 or 1 (got ${JSON.stringify(clusterUploading)})`);
  const clusterCeiling = process.env.BENCH_CLUSTER_CEILING?.trim() ?? "1";
  if (clusterCeiling !== "0" && clusterCeiling !== "1") throw new Error(`BENCH_CLUSTER_CEILING must be 0 or 1 (got ${JSON.stringify(clusterCeiling)})`);
  const threads = numberFromEnv("BENCH_FFMPEG_THREADS", 2, { integer: true });
  if (threads > 16) throw new Error("BENCH_FFMPEG_THREADS must be at most 16");
  return {
    repeats: numberFromEnv("BENCH_REPEATS", 2, { integer: true }),
    imageJobs: numberFromEnv("BENCH_JOBS", 24, { integer: true }),
    videoJobs: numberFromEnv("BENCH_VIDEO_JOBS", 8, { integer: true }),
    concurrency: numberFromEnv("BENCH_CONCURRENCY", 2, { integer: true }),
    ffmpegThreads: threads,
    embedded: parts.includes("embedded"),
    cluster: parts.includes("cluster"),
    clusterVideo: clusterVideo === "1",
    clusterUploading: clusterUploading === "1",
    clusterCeiling: clusterCeiling === "1",
    cpuProfDir: cpuProfDirFromEnv(),
    output: outputFromEnv("process"),
  };
}

function summary(values: readonly number[]): Summary {
  const sorted = [...values].sort((x, y) => x - y);
  const p50 = sorted.length === 0 ? 0 : (sorted[Math.floor((sorted.length - 1) / 2)] ?? 0);
  const mean = sorted.reduce((sum, value) => sum + value, 0) / Math.max(1, sorted.length);
  return { p50: round(p50, 2), max: round(sorted[sorted.length - 1] ?? 0, 2), mean: round(mean, 2) };
}

// ---------------------------------------------------------------------------------------------
// Inputs

/** A 4000×3000 photo-like texture (waves plus grain); each file differs in a 64×64 corner block, so the bytes (and sha256) differ. */
async function makeImages(dir: string, count: number): Promise<{ files: string[]; bytes: number }> {
  const channels = 3;
  const base = Buffer.alloc(IMAGE_WIDTH * IMAGE_HEIGHT * channels);
  let seed = 12345;
  for (let y = 0; y < IMAGE_HEIGHT; y++) {
    const wy = Math.cos(y / 53);
    for (let x = 0; x < IMAGE_WIDTH; x++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const grain = (seed >> 16) % 25;
      const wave = 60 * Math.sin(x / 37 + y / 91) * wy;
      const offset = (y * IMAGE_WIDTH + x) * channels;
      base[offset] = Math.max(0, Math.min(255, 110 + wave + grain + (x * 40) / IMAGE_WIDTH));
      base[offset + 1] = Math.max(0, Math.min(255, 120 - wave / 2 + grain + (y * 50) / IMAGE_HEIGHT));
      base[offset + 2] = Math.max(0, Math.min(255, 100 + wave / 3 + grain));
    }
  }
  const files: string[] = [];
  let bytes = 0;
  for (let index = 0; index < count; index++) {
    const pixels = Buffer.from(base);
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) pixels.fill((index * 37 + x + y) & 0xff, (y * IMAGE_WIDTH + x) * channels, (y * IMAGE_WIDTH + x + 1) * channels);
    }
    const file = path.join(dir, `photo-${index}.jpg`);
    await sharp(pixels, { raw: { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels } }).jpeg({ quality: JPEG_QUALITY }).toFile(file);
    bytes = fs.statSync(file).size;
    files.push(file);
  }
  return { files, bytes };
}

/** Copies of the fixture, remuxed (no re-encoding) with a different comment so that each has its own bytes. */
function makeVideos(dir: string, count: number): string[] {
  const { ffmpeg } = ffmpegBinaries();
  const files: string[] = [];
  for (let index = 0; index < count; index++) {
    const file = path.join(dir, `video-${index}.mp4`);
    execFileSync(ffmpeg, ["-v", "error", "-y", "-i", VIDEO_FIXTURE, "-map", "0", "-c", "copy", "-metadata", `comment=bench-${index}`, file]);
    files.push(file);
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Through the worker

interface ShoalNodeChild {
  readonly child: ShoalChild;
  /** http://127.0.0.1:<port>, or undefined for a node without the api service. */
  readonly baseUrl: string | undefined;
  readonly nodeId: string;
}

async function startShoal(label: string, nodeId: string, env: Record<string, string>, profDir: string | undefined): Promise<ShoalNodeChild> {
  const child = new ShoalChild(
    label,
    {
      BENCH_ROLE: "shoal",
      NODE_ID: nodeId,
      LOG_LEVEL: "warn",
      RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000000",
      RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000",
      RATE_UPLOADS_PER_USER_PER_HOUR: "100000",
      ...env,
    },
    {
      startTimeoutMs: START_TIMEOUT_MS,
      stopTimeoutMs: STOP_TIMEOUT_MS,
      nodeFlags: profDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${path.join(profDir, label)}`],
    },
  );
  const ready = await child.ready;
  return { child, baseUrl: ready.port === 0 ? undefined : `http://127.0.0.1:${ready.port}`, nodeId };
}

/** A fresh benchmark account. */
function register(baseUrl: string, username: string): Promise<{ token: string; userId: string }> {
  return registerAccount(baseUrl, username, `bench-${randomBytes(12).toString("hex")}`);
}

/** The variants as recorded (signed URLs left out: they change on every run). */
function variantsOf(media: MediaJson): unknown {
  return {
    placeholder: typeof media.placeholder === "string" && media.placeholder !== "",
    variants: media.variants.map(({ name, mime, width, height, bytes }) => ({ name, mime, width, height, bytes })),
  };
}

/** Waits for `media:ready` / `media:failed` of the user's items over socket.io. */
class ReadyWatcher {
  private readonly settled = new Map<string, { at: number; failed?: string }>();
  private readonly waiters = new Map<string, (at: number) => void>();
  private readonly failers = new Map<string, (error: Error) => void>();
  /** When the worker said it started the job (`processing`, first time) and finished the processor (`storing`). */
  readonly stages = new Map<string, { processing?: number; storing?: number }>();

  private constructor(private readonly socket: Socket) {
    socket.on("media:progress", (payload: { mediaId: string; stage: string }) => {
      const at = performance.now();
      const entry = this.stages.get(payload.mediaId) ?? {};
      if (payload.stage === "processing" && entry.processing === undefined) entry.processing = at;
      if (payload.stage === "storing") entry.storing = at;
      this.stages.set(payload.mediaId, entry);
    });
    socket.on("media:ready", (payload: { media: { id: string } }) => this.settle(payload.media.id, performance.now()));
    socket.on("media:failed", (payload: { mediaId: string; reason: string }) => this.settle(payload.mediaId, performance.now(), payload.reason));
  }

  static async connect(baseUrl: string, token: string): Promise<ReadyWatcher> {
    const socket = io(baseUrl, { auth: { token }, transports: ["websocket"], reconnection: false });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("connect_error", (error: Error) => reject(new Error(`socket.io: ${error.message}`)));
    });
    return new ReadyWatcher(socket);
  }

  wait(id: string): Promise<number> {
    const done = this.settled.get(id);
    if (done !== undefined) return done.failed === undefined ? Promise.resolve(done.at) : Promise.reject(new Error(`${id} failed: ${done.failed}`));
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} not ready within ${JOB_TIMEOUT_MS / 1000} s`)), JOB_TIMEOUT_MS);
      this.waiters.set(id, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
      this.failers.set(id, (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  close(): void {
    this.socket.close();
  }

  private settle(id: string, at: number, failed?: string): void {
    this.settled.set(id, { at, ...(failed === undefined ? {} : { failed }) });
    if (failed === undefined) this.waiters.get(id)?.(at);
    else this.failers.get(id)?.(new Error(`${id} failed: ${failed}`));
  }
}

async function upload(baseUrl: string, token: string, file: string, mime: string): Promise<{ id: string; acceptedAt: number; seconds: number }> {
  const began = performance.now();
  const form = new FormData();
  form.append("title", path.basename(file));
  form.append("file", new Blob([fs.readFileSync(file)], { type: mime }), path.basename(file));
  const response = await fetch(`${baseUrl}/api/media`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
  const body = (await response.json()) as { media?: { id: string }; duplicate?: boolean };
  const acceptedAt = performance.now();
  if (response.status !== 201 || body.media === undefined) throw new Error(`POST /api/media ${path.basename(file)}: ${response.status} ${JSON.stringify(body)}`);
  return { id: body.media.id, acceptedAt, seconds: (acceptedAt - began) / 1000 };
}

async function getMedia(baseUrl: string, token: string, id: string): Promise<MediaJson> {
  const response = await fetch(`${baseUrl}/api/media/${id}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await response.json()) as { media: MediaJson };
  if (response.status !== 200) throw new Error(`GET /api/media/${id}: ${response.status} ${JSON.stringify(body)}`);
  return body.media;
}

/** Which worker node finished which job (cluster: from the workers' `benchJob` lines). */
class JobLog {
  private readonly byMedia = new Map<string, string>();

  listen(node: ShoalNodeChild): void {
    node.child.on("benchJob", (value) => {
      const line = value as JobLine;
      this.byMedia.set(line.mediaId, line.node);
    });
  }

  nodeOf(mediaId: string): string | undefined {
    return this.byMedia.get(mediaId);
  }
}

/** CPU seconds per second of the processes of a round, and of the machine. */
class CpuWindow {
  private readonly startedAt = performance.now();
  private readonly machineBefore = machineBusySeconds();
  private readonly before: Map<string, number>;

  constructor(private readonly pids: ReadonlyMap<string, number | undefined>) {
    this.before = new Map([...pids].map(([name, pid]) => [name, procCpuSeconds(pid, { endedChildren: true })]));
  }

  finish(): Record<string, number> {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const result: Record<string, number> = {};
    let named = 0;
    for (const [name, pid] of this.pids) {
      const used = procCpuSeconds(pid, { endedChildren: true }) - (this.before.get(name) ?? 0);
      named += used;
      result[name] = round(used / seconds, 2);
    }
    const machine = machineBusySeconds() - this.machineBefore;
    result.machine = round(machine / seconds, 2);
    result.others = round(Math.max(0, machine - named) / seconds, 2);
    return result;
  }
}

interface WorkerRoundSetup {
  readonly gateway: ShoalNodeChild;
  /** Cluster: the worker processes taking part; each does a warm-up job before the measured ones. */
  readonly workers?: readonly ShoalNodeChild[];
  readonly jobLog?: JobLog;
  /** Processes whose CPU use is recorded (name -> pid). */
  readonly cpu: ReadonlyMap<string, number | undefined>;
}

type Accepted = { readonly id: string; readonly acceptedAt: number; readonly seconds: number };

/** Checks that GET /api/media/:id says `ready` for every item (after their media:ready). */
async function expectAllReady(baseUrl: string, token: string, uploads: readonly Accepted[]): Promise<MediaJson[]> {
  const items = await Promise.all(uploads.map((entry) => getMedia(baseUrl, token, entry.id)));
  const notReady = items.filter((item) => item.status !== "ready");
  if (notReady.length > 0) throw new Error(`${notReady.length} items not ready after media:ready: ${notReady.map((item) => item.status).join(", ")}`);
  return items;
}

/** The times of a round on queued jobs: its jobs over the time from `go` until the last was ready. */
function queuedRoundTimes(jobs: number, go: number, ready: readonly number[]): Pick<RoundFigures, "jobs" | "wallSeconds" | "jobsPerMinute" | "jobSeconds"> {
  const wallSeconds = (Math.max(...ready) - go) / 1000;
  return { jobs, wallSeconds: round(wallSeconds, 2), jobsPerMinute: round((jobs / wallSeconds) * 60, 1), jobSeconds: summary(ready.map((at) => (at - go) / 1000)) };
}

/**
 * Each job's time split by its progress events as the client saw them: from `since` (the round's start, or
 * the item's acceptance) to its first `processing`, from there to `storing`, and from `storing` to ready.
 */
function stagesOf(watcher: ReadyWatcher, uploads: readonly Accepted[], ready: readonly number[], since: (entry: Accepted) => number) {
  const waited: number[] = [];
  const processing: number[] = [];
  const finishing: number[] = [];
  const starts: number[] = [];
  uploads.forEach((entry, index) => {
    const stages = watcher.stages.get(entry.id);
    if (stages?.processing === undefined || stages.storing === undefined) return;
    starts.push(stages.processing);
    waited.push(Math.max(0, stages.processing - since(entry)) / 1000);
    processing.push((stages.storing - stages.processing) / 1000);
    finishing.push(((ready[index] as number) - stages.storing) / 1000);
  });
  return { waited, processing, finishing, starts };
}

/**
 * One worker round on a fresh account: warm-up files are uploaded and waited for one at a time (one, or in
 * cluster mode until every worker process has done one), then the measured files are uploaded one after
 * another as fast as the gateway takes them, and the round lasts from the first measured upload accepted
 * until the last item is ready.
 */
async function workerRound(
  scope: string,
  setup: WorkerRoundSetup,
  username: string,
  warmups: readonly string[],
  measured: readonly string[],
  mime: string,
): Promise<{ figures: RoundFigures; sample: MediaJson }> {
  const baseUrl = setup.gateway.baseUrl as string;
  const { token } = await register(baseUrl, username);
  const watcher = await ReadyWatcher.connect(baseUrl, token);
  try {
    const warmed = new Set<string>();
    let warmupJobs = 0;
    for (const file of warmups) {
      const warm = await upload(baseUrl, token, file, mime);
      await watcher.wait(warm.id);
      warmupJobs++;
      if (setup.workers === undefined || setup.jobLog === undefined) break;
      // The worker's line and the gateway's socket.io event race each other; the line is rarely later.
      for (let tries = 0; tries < 50 && setup.jobLog.nodeOf(warm.id) === undefined; tries++) await delay(20);
      const node = setup.jobLog.nodeOf(warm.id);
      if (node !== undefined) warmed.add(node);
      if (setup.workers.every((worker) => warmed.has(worker.nodeId))) break;
    }
    const allWarmed = setup.workers === undefined || setup.workers.every((worker) => warmed.has(worker.nodeId));
    progress(scope, `${warmupJobs} warm-up job(s) ready${allWarmed ? "" : " (warning: not every worker process got one)"}; uploading ${measured.length} jobs`);
    const loadAverage1mBefore = loadAverage1m();
    const cpu = new CpuWindow(setup.cpu);
    const uploads: Array<{ id: string; acceptedAt: number; seconds: number }> = [];
    const readyAt: Array<Promise<number>> = [];
    for (const file of measured) {
      const accepted = await upload(baseUrl, token, file, mime);
      uploads.push(accepted);
      readyAt.push(watcher.wait(accepted.id));
    }
    const ready = await Promise.all(readyAt);
    const cpuSecondsPerSecond = cpu.finish();
    const first = Math.min(...uploads.map((entry) => entry.acceptedAt));
    const wallSeconds = (Math.max(...ready) - first) / 1000;
    const items = await expectAllReady(baseUrl, token, uploads);
    const uploadSeconds = uploads.map((entry) => entry.seconds);
    // Where each job's time went, from the worker's progress events (socket.io, client clock).
    const { waited: queued, processing, finishing } = stagesOf(watcher, uploads, ready, (entry) => entry.acceptedAt);
    const extra: Record<string, unknown> = {
      stagesSeconds: {
        jobsWithAllStages: processing.length,
        queuedAfterAccepted: summary(queued),
        processorRun: summary(processing),
        storingToReady: summary(finishing),
      },
      warmupJobs,
      cpuSecondsPerSecond,
    };
    if (setup.workers !== undefined && setup.jobLog !== undefined) {
      const jobLog = setup.jobLog;
      const workers = setup.workers;
      // worker1, worker2: the round's worker processes in the order they were started.
      const labelOf = (nodeId: string | undefined) => {
        const index = workers.findIndex((worker) => worker.nodeId === nodeId);
        return index < 0 ? undefined : `worker${index + 1}`;
      };
      const jobsPerWorker: Record<string, number> = Object.fromEntries(workers.map((_worker, index) => [`worker${index + 1}`, 0]));
      let unknown = 0;
      for (const entry of uploads) {
        const label = labelOf(jobLog.nodeOf(entry.id));
        if (label === undefined) unknown++;
        else jobsPerWorker[label] = (jobsPerWorker[label] ?? 0) + 1;
      }
      extra.jobsPerWorker = unknown > 0 ? { ...jobsPerWorker, unknown } : jobsPerWorker;
      extra.warmedWorkers = [...warmed].map(labelOf).sort();
    }
    return {
      figures: {
        jobs: measured.length,
        wallSeconds: round(wallSeconds, 2),
        jobsPerMinute: round((measured.length / wallSeconds) * 60, 1),
        jobSeconds: summary(uploads.map((entry, index) => ((ready[index] as number) - entry.acceptedAt) / 1000)),
        loadAverage1mBefore,
        uploadSeconds: { p50: summary(uploadSeconds).p50, max: summary(uploadSeconds).max, total: round(uploadSeconds.reduce((a, b) => a + b, 0), 2) },
        extra,
      },
      sample: items[0] as MediaJson,
    };
  } finally {
    watcher.close();
  }
}

/** Deletes the job messages of these items from the jobs stream, from sequence `fromSeq` on; answers how many. */
async function dropJobMessages(jetstream: JetStreamManager, fromSeq: number, ids: ReadonlySet<string>): Promise<number> {
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

interface QueuedRoundSetup {
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
async function queuedRound(
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
async function embeddedQueuedRound(
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

async function directRound(
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
async function ceilingRound(scope: string, processes: number, files: readonly string[], workDir: string): Promise<RoundFigures> {
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

// ---------------------------------------------------------------------------------------------

function describe(figures: RoundFigures): string {
  const extra = figures.extra ?? {};
  const stages = extra.stagesSeconds as
    | { queuedAfterAccepted?: Summary; startedAfterSubscribe?: Summary; processorRun: Summary; storingToReady: Summary }
    | undefined;
  const waited =
    stages?.queuedAfterAccepted !== undefined
      ? `queued ${stages.queuedAfterAccepted.p50} s`
      : `started after subscribe ${stages?.startedAfterSubscribe?.p50 ?? "?"} s`;
  const split =
    stages === undefined
      ? ""
      : `; p50 ${waited}, processor ${stages.processorRun.p50} s, storing->ready ${stages.storingToReady.p50} s` +
        (figures.uploadSeconds === undefined ? "" : `, upload ${figures.uploadSeconds.p50} s`);
  const perWorker = extra.jobsPerWorker === undefined ? "" : `; jobs per worker ${JSON.stringify(extra.jobsPerWorker)}`;
  const cpu = extra.cpuSecondsPerSecond === undefined ? "" : `; CPU s/s ${JSON.stringify(extra.cpuSecondsPerSecond)}`;
  return `${figures.jobsPerMinute.toFixed(1)} jobs/min (${figures.jobs} jobs in ${figures.wallSeconds} s, per job p50 ${figures.jobSeconds.p50} s${split}${perWorker}${cpu}, load ${figures.loadAverage1mBefore})`;
}

const ratio = (x: number | undefined, y: number | undefined): number | null =>
  x === undefined || y === undefined || y === 0 ? null : round(x / y, 3);

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

    // --- Report --------------------------------------------------------------------------------
    const combined = Object.fromEntries((Object.keys(all) as RoundKey[]).map((key) => [key, combine(all[key])])) as Record<RoundKey, Combined>;
    const has = (key: RoundKey) => all[key].length > 0;
    const jpm = (key: RoundKey) => (has(key) ? combined[key].jobsPerMinute : undefined);
    const ratios = {
      aOverB: ratio(jpm("a"), jpm("b")),
      cOverD: ratio(jpm("c"), jpm("d")),
      whileUploading: { aOverB: ratio(jpm("au"), jpm("b")), cOverD: ratio(jpm("cu"), jpm("d")) },
      twoWorkersOverOne: { image: ratio(jpm("e2"), jpm("e1")), video: ratio(jpm("f2"), jpm("f1")) },
      twoWorkersOverOneWhileUploading: { image: ratio(jpm("e2u"), jpm("e1u")), video: ratio(jpm("f2u"), jpm("f1u")) },
      twoDirectProcessesOverOne: { image: ratio(jpm("g2"), jpm("g1")) },
    };
    const perRepeat = (x: RoundKey, y: RoundKey) => all[x].map((entry, index) => ratio(entry.jobsPerMinute, all[y][index]?.jobsPerMinute));
    const ratiosPerRepeat = {
      aOverB: perRepeat("a", "b"),
      cOverD: perRepeat("c", "d"),
      whileUploading: { aOverB: perRepeat("au", "b"), cOverD: perRepeat("cu", "d") },
      twoWorkersOverOne: { image: perRepeat("e2", "e1"), video: perRepeat("f2", "f1") },
      twoWorkersOverOneWhileUploading: { image: perRepeat("e2u", "e1u"), video: perRepeat("f2u", "f1u") },
      twoDirectProcessesOverOne: { image: perRepeat("g2", "g1") },
    };
    const goal = (target: number, reached: number | null) => ({ goal: target, reached, met: reached === null ? null : reached >= target });
    const rounds: Record<string, unknown> = {};
    const roundNames: Record<RoundKey, string> = {
      a: "a",
      b: "b",
      c: "c",
      d: "d",
      au: "aWhileUploading",
      cu: "cWhileUploading",
      e1: "imageOneWorkerProcess",
      e2: "imageTwoWorkerProcesses",
      f1: "videoOneWorkerProcess",
      f2: "videoTwoWorkerProcesses",
      e1u: "imageOneWorkerProcessWhileUploading",
      e2u: "imageTwoWorkerProcessesWhileUploading",
      f1u: "videoOneWorkerProcessWhileUploading",
      f2u: "videoTwoWorkerProcessesWhileUploading",
      g1: "imageOneDirectProcess",
      g2: "imageTwoDirectProcesses",
    };
    const labels: Record<string, string> = { ...embeddedLabels, ...clusterLabels };
    for (const key of Object.keys(all) as RoundKey[]) if (has(key)) rounds[roundNames[key]] = { description: labels[key], ...combined[key] };

    const report = {
      benchmark: "process",
      date,
      machine,
      code: code ?? null,
      inputs: {
        image: {
          width: IMAGE_WIDTH,
          height: IMAGE_HEIGHT,
          jpegQuality: JPEG_QUALITY,
          bytes: images.bytes,
          produced: sampleImage === undefined ? null : variantsOf(sampleImage),
        },
        video: {
          fixture: path.relative(PROJECT_ROOT, VIDEO_FIXTURE),
          bytes: fs.statSync(VIDEO_FIXTURE).size,
          produced: sampleVideo === undefined ? null : variantsOf(sampleVideo),
        },
      },
      settings: {
        imageJobsPerRound: options.imageJobs,
        videoJobsPerRound: options.videoJobs,
        repeats: options.repeats,
        warmup:
          "one job before each embedded round and each direct run; in the cluster rounds on queued jobs, one job per worker process run by that process " +
          "before it subscribes (its own item, through its channel handler, not from JetStream); in the cluster rounds while uploading, warm-up jobs one at a time until every worker process has done one",
        embedded: options.embedded
          ? {
              node: "one process: gateway and worker (SQLite, memory cache, local disk)",
              queuedRounds:
                `(a)/(c): a node of its own per round, started with its channel subscription held back; the files uploaded (the in-process channel drops ` +
                `their job messages, the items stay 'uploaded'); the node subscribes and runs one warm-up job; once the items are older than its ` +
                `JOB_DEADLINE_SECONDS (${EMBEDDED_QUEUED_DEADLINE_SECONDS}), a reconciler round on the node publishes them again; timed from that round's start until the last media:ready`,
              uploadingRounds: "(au)/(cu), the previous measurement: one node for all of them, the worker running while the measured files are uploaded; timed from the first upload accepted",
              workerConcurrency: options.concurrency,
              ffmpegThreads: options.ffmpegThreads,
              sharpThreadsPerImage: 1,
              directConcurrency: options.concurrency,
              directImage: "processImage() (lib/processing/images.ts) with the worker's options",
              directVideoCommands: videoCommands ?? null,
            }
          : null,
        cluster: options.cluster
          ? {
              services: "MariaDB primary (no replica), Redis, NATS with JetStream, s3rver; one child process (bench/harness/services.ts)",
              gateway: { SERVICES: GATEWAY_SERVICES },
              workers: { SERVICES: "processing", ...CLUSTER_WORKER, sharpThreadsPerImage: 1 },
              workerProcesses: "1 in (e1)/(f1)/(e1u)/(f1u); 2 in (e2)/(f2)/(e2u)/(f2u); started for each round and stopped after it",
              queuedRounds:
                "(e1)/(e2)/(f1)/(f2): every job uploaded while no worker process runs (its message waits in JetStream); then the worker process(es) " +
                "start, each runs one warm-up job, and all are told to subscribe at once; timed from that moment until the last measured media:ready",
              uploadingRounds: options.clusterUploading
                ? "(e1u)/(e2u)/(f1u)/(f2u), the previous measurement: worker process(es) running and warmed up; the measured files uploaded one after another; " +
                  "timed from the first upload accepted until the last media:ready (the gateway and s3rver take uploads while the workers work)"
                : null,
              video: options.clusterVideo,
              ceilingRounds: options.clusterCeiling
                ? "(g1)/(g2), before the cluster's services start: processImage() in 1 direct process against 2 (bench/process-direct.ts, one image " +
                  "at a time each, one libvips thread), the measured files split between the processes, all started on one line after their warm-up"
                : null,
            }
          : null,
      },
      rounds,
      ratios,
      ratiosPerRepeat,
      goals: {
        aOverB: goal(GOALS.aOverB, ratios.aOverB),
        cOverD: goal(GOALS.cOverD, ratios.cOverD),
        twoWorkerProcessesOverOne: {
          ...goal(GOALS.twoOverOne, ratios.twoWorkersOverOne.image),
          measured:
            "image jobs per minute, cluster mode, 2 worker processes vs 1 (each WORKER_CONCURRENCY=1, one thread per job), on jobs queued before " +
            "the workers start: from the workers subscribing until the last item is ready",
          video: ratios.twoWorkersOverOne.video,
          whileUploading: ratios.twoWorkersOverOneWhileUploading,
          machineCeiling: ratios.twoDirectProcessesOverOne.image,
        },
      },
    };
    writeReport(options.output, report);

    console.log("");
    console.log(`Processing benchmark, ${date}: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}`);
    const rows: Array<[RoundKey, string]> = [
      ["a", `(a) image, embedded worker, ${options.concurrency} slots, queued`],
      ["b", "(b) image direct (processImage)"],
      ["c", `(c) video, embedded worker, ${options.concurrency} slots, queued`],
      ["d", "(d) video direct (same ffmpeg args)"],
      ["au", "(au) image, embedded, while uploading"],
      ["cu", "(cu) video, embedded, while uploading"],
      ["e1", "(e1) image, cluster, 1 worker process"],
      ["e2", "(e2) image, cluster, 2 worker processes"],
      ["f1", "(f1) video, cluster, 1 worker process"],
      ["f2", "(f2) video, cluster, 2 worker processes"],
      ["e1u", "(e1u) image, 1 worker, while uploading"],
      ["e2u", "(e2u) image, 2 workers, while uploading"],
      ["f1u", "(f1u) video, 1 worker, while uploading"],
      ["f2u", "(f2u) video, 2 workers, while uploading"],
      ["g1", "(g1) image direct, 1 process"],
      ["g2", "(g2) image direct, 2 processes"],
    ];
    console.log(`  ${"round".padEnd(42)}${"jobs/min".padStart(10)}   per repeat (load average at its start)`);
    for (const [key, label] of rows) {
      if (!has(key)) continue;
      const value = combined[key];
      const each = value.perRepeat.map((entry) => `${entry.jobsPerMinute.toFixed(1)} (${entry.loadAverage1mBefore.toFixed(1)})`).join(", ");
      console.log(`  ${label.padEnd(42)}${value.jobsPerMinute.toFixed(1).padStart(10)}   ${each}`);
    }
    const show = (name: string, value: number | null, target?: number) =>
      value === null ? undefined : `  ${name} = ${value.toFixed(3)}${target === undefined ? "" : ` (goal ${target}: ${value >= target ? "met" : "not met"})`}`;
    for (const line of [
      show("a/b", ratios.aOverB, GOALS.aOverB),
      show("c/d", ratios.cOverD, GOALS.cOverD),
      show("au/b (while uploading)", ratios.whileUploading.aOverB),
      show("cu/d (while uploading)", ratios.whileUploading.cOverD),
      show("2 worker processes / 1, image", ratios.twoWorkersOverOne.image, GOALS.twoOverOne),
      show("2 worker processes / 1, video", ratios.twoWorkersOverOne.video),
      show("2 worker processes / 1, image, while uploading", ratios.twoWorkersOverOneWhileUploading.image),
      show("2 worker processes / 1, video, while uploading", ratios.twoWorkersOverOneWhileUploading.video),
      show("2 direct processes / 1, image (the machine's own scaling)", ratios.twoDirectProcessesOverOne.image),
    ]) {
      if (line !== undefined) console.log(line);
    }
    printWrittenTo(options.output);
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  }
}

runMain(main);

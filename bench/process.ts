/**
 * Processing benchmark: `npm run bench:process` (see bench/README.md).
 *
 * Embedded mode, on this machine. Every Shoal node and every direct run is a child process:
 *   (a) images through the worker: a 12-megapixel JPEG uploaded with POST /api/media (multipart, bearer
 *       token) to a Shoal node (bench/read-server.ts, BENCH_ROLE=shoal), timed from "upload accepted"
 *       (the 201) until socket.io `media:ready`; all variants (thumb, display, display-jpeg, placeholder);
 *   (b) the same images through processImage() called directly (bench/process-direct.ts), same options;
 *   (c) a video through the worker (test/fixtures/video/mp4_h264_aac51_1080p60.mp4);
 *   (d) the same video through transcodeVideo() called directly;
 *   (e) images through one node with WORKER_CONCURRENCY=1 against one with WORKER_CONCURRENCY=2 (one
 *       process each: embedded mode has a single worker process, so this is the worker-slot comparison,
 *       not two worker processes).
 * Prints jobs per minute, a/b, c/d and the 2-slot/1-slot ratio; writes bench/results/process.json.
 *
 * Environment: BENCH_JOBS (measured image jobs per round, default 24), BENCH_VIDEO_JOBS (measured video
 * jobs per round, default 8), BENCH_CONCURRENCY (worker slots of (a)-(d), default 2 = cores),
 * BENCH_REPEATS (default 2: each pair of rounds runs twice, in alternating order), BENCH_OUTPUT (default
 * bench/results/process.json). Each round first runs one unmeasured warm-up job.
 */
import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import readline from "node:readline";
import sharp from "sharp";
import { io } from "socket.io-client";
import type { Socket } from "socket.io-client";
import { ffmpegBinaries } from "../lib/processing/ffmpeg-binaries";
import type { DirectResult } from "./process-protocol";
import type { ReadyLine } from "./read-server";
import { PROJECT_ROOT, codeState, machineInfo, round } from "./common";

const SHOAL_SCRIPT = path.join(__dirname, "read-server.ts");
const DIRECT_SCRIPT = path.join(__dirname, "process-direct.ts");
const VIDEO_FIXTURE = path.join(PROJECT_ROOT, "test/fixtures/video/mp4_h264_aac51_1080p60.mp4");
const IMAGE_WIDTH = 4000;
const IMAGE_HEIGHT = 3000;
const JPEG_QUALITY = 90;
const START_TIMEOUT_MS = 120_000;
const JOB_TIMEOUT_MS = 300_000;
const GOALS = { aOverB: 0.9, cOverD: 0.95, twoOverOne: 1.7 } as const;

type RoundKey = "a" | "b" | "c" | "d" | "e1" | "e2";

const ROUND_LABELS: Record<RoundKey, string> = {
  a: "(a) image via POST /api/media to the worker (WORKER_CONCURRENCY=2), accepted -> media:ready",
  b: "(b) image via processImage() in a child process, same options, 2 at once",
  c: "(c) video via POST /api/media to the worker (WORKER_CONCURRENCY=2), accepted -> media:ready",
  d: "(d) video via transcodeVideo() in a child process, same options, 2 at once",
  e1: "(e1) image via the worker, node with WORKER_CONCURRENCY=1",
  e2: "(e2) image via the worker, node with WORKER_CONCURRENCY=2",
};

interface Options {
  readonly repeats: number;
  readonly imageJobs: number;
  readonly videoJobs: number;
  readonly concurrency: number;
  readonly output: string;
}

interface RoundFigures {
  readonly jobs: number;
  readonly wallSeconds: number;
  readonly jobsPerMinute: number;
  /** Per job: accepted -> ready (worker) or the job's own run time (direct). */
  readonly jobSeconds: { readonly p50: number; readonly max: number; readonly mean: number };
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
  return { jobsPerMinute: round((jobs / wallSeconds) * 60, 1), jobs, wallSeconds: round(wallSeconds, 2), perRepeat: rounds };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function positiveIntFromEnv(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer (got ${JSON.stringify(raw)})`);
  return value;
}

function readOptions(): Options {
  return {
    repeats: positiveIntFromEnv("BENCH_REPEATS", 2),
    imageJobs: positiveIntFromEnv("BENCH_JOBS", 24),
    videoJobs: positiveIntFromEnv("BENCH_VIDEO_JOBS", 8),
    concurrency: positiveIntFromEnv("BENCH_CONCURRENCY", 2),
    output: path.resolve(PROJECT_ROOT, process.env.BENCH_OUTPUT ?? "bench/results/process.json"),
  };
}

function progress(scope: string, message: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] [${scope}] ${message}`);
}

const load1m = (): number => round(os.loadavg()[0] ?? 0, 2);

function summary(values: readonly number[]): { p50: number; max: number; mean: number } {
  const sorted = [...values].sort((x, y) => x - y);
  const p50 = sorted.length === 0 ? 0 : (sorted[Math.floor((sorted.length - 1) / 2)] ?? 0);
  const mean = sorted.reduce((sum, value) => sum + value, 0) / Math.max(1, sorted.length);
  return { p50: round(p50, 2), max: round(sorted[sorted.length - 1] ?? 0, 2), mean: round(mean, 2) };
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "TMPDIR", "LANG", "TZ"]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

// ---------------------------------------------------------------------------------------------
// Child processes

const liveChildren = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});

/** A child printing `{"<key>":…}` lines on stdout; resolves `message` with the first such value. */
class Child<T> {
  readonly message: Promise<T>;
  readonly exited: Promise<string>;
  private readonly process: ChildProcess;
  private readonly lastLines: string[] = [];

  constructor(
    readonly label: string,
    script: string,
    env: Record<string, string>,
    key: string,
    timeoutMs: number,
  ) {
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: PROJECT_ROOT,
      env: { ...baseEnv(), ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.process = child;
    liveChildren.add(child);
    this.exited = new Promise((resolve) => {
      child.once("error", (error) => resolve(`could not be run: ${error.message}`));
      child.once("exit", (code, signal) => resolve(signal !== null ? `killed by ${signal}` : `exit code ${code}`));
    });
    void this.exited.then(() => liveChildren.delete(child));
    child.stdin?.on("error", () => undefined);
    let deliver: (value: T) => void = () => undefined;
    let timer: NodeJS.Timeout | undefined;
    this.message = new Promise<T>((resolve, reject) => {
      deliver = resolve;
      timer = setTimeout(() => reject(this.failure(`gave no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      void this.exited.then((how) => reject(this.failure(`ended (${how}) before answering`)));
    });
    this.message.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
    const prefix = `{"${key}"`;
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      readline.createInterface({ input: stream }).on("line", (line) => {
        if (line.startsWith(prefix)) {
          deliver((JSON.parse(line) as Record<string, T>)[key] as T);
          return;
        }
        this.lastLines.push(line);
        if (this.lastLines.length > 40) this.lastLines.shift();
      });
    }
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill("SIGTERM");
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  private failure(what: string): Error {
    const tail = this.lastLines.length > 0 ? `\n--- last output ---\n${this.lastLines.join("\n")}` : "";
    return new Error(`${this.label} ${what}${tail}`);
  }
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
  readonly child: Child<ReadyLine>;
  readonly baseUrl: string;
}

async function startShoal(label: string, dataDir: string, workerConcurrency: number): Promise<ShoalNodeChild> {
  const child = new Child<ReadyLine>(
    label,
    SHOAL_SCRIPT,
    {
      BENCH_ROLE: "shoal",
      SHOAL_MODE: "embedded",
      SHOAL_DATA_DIR: dataDir,
      SHOAL_SECRET: randomBytes(32).toString("hex"),
      LOG_LEVEL: "warn",
      WORKER_CONCURRENCY: String(workerConcurrency),
      RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000000",
      RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000",
      RATE_UPLOADS_PER_USER_PER_HOUR: "100000",
    },
    "benchReady",
    START_TIMEOUT_MS,
  );
  const ready = await child.message;
  return { child, baseUrl: `http://127.0.0.1:${ready.port}` };
}

async function register(baseUrl: string, username: string): Promise<string> {
  const response = await fetch(`${baseUrl}/api/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, email: `${username}@example.test`, password: `bench-${randomBytes(12).toString("hex")}` }),
  });
  const body = (await response.json()) as { token?: string };
  if (response.status !== 201 || body.token === undefined) throw new Error(`register: ${response.status} ${JSON.stringify(body)}`);
  return body.token;
}

interface MediaJson {
  readonly id: string;
  readonly status: string;
  readonly placeholder?: string | null;
  readonly variants: ReadonlyArray<{ name: string; width?: number | null; height?: number | null; mime?: string; bytes?: number }>;
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

/**
 * One worker round on a fresh account: the first file is a warm-up (uploaded and waited for alone),
 * then the others are uploaded one after another as fast as the gateway takes them, and the round
 * lasts from the first measured upload accepted until the last item is ready.
 */
async function workerRound(scope: string, node: ShoalNodeChild, username: string, files: readonly string[], mime: string): Promise<{ figures: RoundFigures; sample: MediaJson }> {
  const token = await register(node.baseUrl, username);
  const watcher = await ReadyWatcher.connect(node.baseUrl, token);
  try {
    const warm = await upload(node.baseUrl, token, files[0] as string, mime);
    await watcher.wait(warm.id);
    progress(scope, `warm-up job ready; uploading ${files.length - 1} jobs`);
    const loadAverage1mBefore = load1m();
    const measured = files.slice(1);
    const uploads: Array<{ id: string; acceptedAt: number; seconds: number }> = [];
    const readyAt: Array<Promise<number>> = [];
    for (const file of measured) {
      const accepted = await upload(node.baseUrl, token, file, mime);
      uploads.push(accepted);
      readyAt.push(watcher.wait(accepted.id));
    }
    const ready = await Promise.all(readyAt);
    const first = Math.min(...uploads.map((entry) => entry.acceptedAt));
    const wallSeconds = (Math.max(...ready) - first) / 1000;
    const items = await Promise.all(uploads.map((entry) => getMedia(node.baseUrl, token, entry.id)));
    const notReady = items.filter((item) => item.status !== "ready");
    if (notReady.length > 0) throw new Error(`${notReady.length} items not ready after media:ready: ${notReady.map((item) => item.status).join(", ")}`);
    const uploadSeconds = uploads.map((entry) => entry.seconds);
    // Where each job's time went, from the worker's progress events (socket.io, client clock).
    const queued: number[] = [];
    const processing: number[] = [];
    const finishing: number[] = [];
    uploads.forEach((entry, index) => {
      const stages = watcher.stages.get(entry.id);
      const readyTime = ready[index] as number;
      if (stages?.processing === undefined || stages.storing === undefined) return;
      queued.push(Math.max(0, stages.processing - entry.acceptedAt) / 1000);
      processing.push((stages.storing - stages.processing) / 1000);
      finishing.push((readyTime - stages.storing) / 1000);
    });
    return {
      figures: {
        jobs: measured.length,
        wallSeconds: round(wallSeconds, 2),
        jobsPerMinute: round((measured.length / wallSeconds) * 60, 1),
        jobSeconds: summary(uploads.map((entry, index) => ((ready[index] as number) - entry.acceptedAt) / 1000)),
        loadAverage1mBefore,
        uploadSeconds: { p50: summary(uploadSeconds).p50, max: summary(uploadSeconds).max, total: round(uploadSeconds.reduce((a, b) => a + b, 0), 2) },
        extra: {
          stagesSeconds: {
            jobsWithAllStages: processing.length,
            queuedAfterAccepted: summary(queued),
            processorRun: summary(processing),
            storingToReady: summary(finishing),
          },
        },
      },
      sample: items[0] as MediaJson,
    };
  } finally {
    watcher.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Direct

async function directRound(scope: string, kind: "image" | "video", files: readonly string[], concurrency: number, workDir: string): Promise<RoundFigures> {
  const loadAverage1mBefore = load1m();
  const child = new Child<DirectResult>(
    `direct ${kind}`,
    DIRECT_SCRIPT,
    {
      BENCH_DIRECT_KIND: kind,
      BENCH_DIRECT_FILES: JSON.stringify(files),
      BENCH_DIRECT_WARMUP: "1",
      BENCH_DIRECT_CONCURRENCY: String(concurrency),
      BENCH_DIRECT_WORK_DIR: workDir,
    },
    "benchDirect",
    JOB_TIMEOUT_MS * 2,
  );
  try {
    const result = await child.message;
    progress(scope, `${result.jobs} jobs in ${result.wallSeconds.toFixed(2)} s`);
    return {
      jobs: result.jobs,
      wallSeconds: round(result.wallSeconds, 2),
      jobsPerMinute: round((result.jobs / result.wallSeconds) * 60, 1),
      jobSeconds: summary(result.jobSeconds),
      loadAverage1mBefore,
      extra: { processCpuSecondsWithWarmup: round(result.processCpuSeconds, 2) },
    };
  } finally {
    await child.stop();
  }
}

// ---------------------------------------------------------------------------------------------


function describe(figures: RoundFigures): string {
  const stages = figures.extra?.stagesSeconds as
    | { queuedAfterAccepted: { p50: number }; processorRun: { p50: number }; storingToReady: { p50: number } }
    | undefined;
  const split =
    stages === undefined
      ? ""
      : `; p50 queued ${stages.queuedAfterAccepted.p50} s, processor ${stages.processorRun.p50} s, storing->ready ${stages.storingToReady.p50} s` +
        (figures.uploadSeconds === undefined ? "" : `, upload ${figures.uploadSeconds.p50} s`);
  return `${figures.jobsPerMinute.toFixed(1)} jobs/min (${figures.jobs} jobs in ${figures.wallSeconds} s, per job p50 ${figures.jobSeconds.p50} s${split}, load ${figures.loadAverage1mBefore})`;
}

async function main(): Promise<void> {
  const options = readOptions();
  const machine = machineInfo();
  const date = new Date().toISOString();
  // Taken at the start: the children load the code as it is now, even if the tree changes during the run.
  const code = codeState();
  progress("bench", `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, load ${machine.loadAverageAtStart.join(" ")}`);
  progress("bench", `embedded mode; ${options.imageJobs} image jobs and ${options.videoJobs} video jobs per round (+1 warm-up each), ${options.concurrency} slots`);
  if ((machine.loadAverageAtStart[0] ?? 0) > machine.cores / 2) {
    progress("bench", `warning: 1-minute load average is ${machine.loadAverageAtStart[0]} on ${machine.cores} cores; other work skews the figures`);
  }

  const root = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-bench-process-"));
  const cleanup: Array<() => Promise<void>> = [() => fs.promises.rm(root, { recursive: true, force: true })];
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    void (async () => {
      for (const step of cleanup.reverse()) await step().catch(() => undefined);
      process.exit(130);
    })();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    const inputs = path.join(root, "inputs");
    fs.mkdirSync(inputs);
    const imageCount = options.imageJobs + 1;
    progress("bench", `making ${imageCount} ${IMAGE_WIDTH}x${IMAGE_HEIGHT} JPEGs (quality ${JPEG_QUALITY}) and ${options.videoJobs + 1} video copies`);
    const images = await makeImages(inputs, imageCount);
    const videos = makeVideos(inputs, options.videoJobs + 1);
    progress("bench", `image ${(images.bytes / 1e6).toFixed(1)} MB, video ${(fs.statSync(VIDEO_FIXTURE).size / 1e6).toFixed(1)} MB`);

    const startNode = async (label: string, slots: number): Promise<ShoalNodeChild> => {
      const dataDir = fs.mkdtempSync(path.join(root, `${label}-`));
      progress(label, `starting embedded Shoal node, WORKER_CONCURRENCY=${slots}`);
      const node = await startShoal(label, dataDir, slots);
      cleanup.push(() => node.child.stop());
      return node;
    };

    const shared = await startNode("worker", options.concurrency);
    const one = await startNode("slots-1", 1);
    const two = await startNode("slots-2", 2);
    let sampleImage: MediaJson | undefined;
    let sampleVideo: MediaJson | undefined;
    const all: Record<RoundKey, RoundFigures[]> = { a: [], b: [], c: [], d: [], e1: [], e2: [] };
    const run: Record<RoundKey, (repeat: number) => Promise<RoundFigures>> = {
      a: async (repeat) => {
        const result = await workerRound("a", shared, `benchimg${repeat}`, images.files, "image/jpeg");
        sampleImage ??= result.sample;
        return result.figures;
      },
      b: (repeat) => directRound("b", "image", images.files, options.concurrency, path.join(root, `direct-image-${repeat}`)),
      c: async (repeat) => {
        const result = await workerRound("c", shared, `benchvid${repeat}`, videos, "video/mp4");
        sampleVideo ??= result.sample;
        return result.figures;
      },
      d: (repeat) => directRound("d", "video", videos, options.concurrency, path.join(root, `direct-video-${repeat}`)),
      e1: async (repeat) => (await workerRound("e1", one, `benchone${repeat}`, images.files, "image/jpeg")).figures,
      e2: async (repeat) => (await workerRound("e2", two, `benchtwo${repeat}`, images.files, "image/jpeg")).figures,
    };
    const pairs: Array<[RoundKey, RoundKey]> = [
      ["a", "b"],
      ["c", "d"],
      ["e1", "e2"],
    ];
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      for (const pair of pairs) {
        // Alternate the order within each pair, so that a drift in the machine's load favours neither side.
        const order = repeat % 2 === 0 ? pair : ([pair[1], pair[0]] as const);
        for (const key of order) {
          progress(key, `repeat ${repeat + 1}/${options.repeats}: ${ROUND_LABELS[key]}`);
          const figures = await run[key](repeat);
          all[key].push(figures);
          progress(key, describe(figures));
        }
      }
    }
    for (const node of [shared, one, two]) await node.child.stop();
    if (sampleImage === undefined || sampleVideo === undefined) throw new Error("no worker round ran");

    const combined = Object.fromEntries((Object.keys(all) as RoundKey[]).map((key) => [key, combine(all[key])])) as Record<RoundKey, Combined>;
    const a = combined.a;
    const b = combined.b;
    const c = combined.c;
    const d = combined.d;
    const e1 = combined.e1;
    const e2 = combined.e2;
    const ratios = {
      aOverB: round(a.jobsPerMinute / b.jobsPerMinute, 3),
      cOverD: round(c.jobsPerMinute / d.jobsPerMinute, 3),
      twoOverOne: round(e2.jobsPerMinute / e1.jobsPerMinute, 3),
    };
    const ratiosPerRepeat = all.a.map((_, index) => ({
      aOverB: round((all.a[index]?.jobsPerMinute ?? 0) / (all.b[index]?.jobsPerMinute ?? 1), 3),
      cOverD: round((all.c[index]?.jobsPerMinute ?? 0) / (all.d[index]?.jobsPerMinute ?? 1), 3),
      twoOverOne: round((all.e2[index]?.jobsPerMinute ?? 0) / (all.e1[index]?.jobsPerMinute ?? 1), 3),
    }));
    const report = {
      benchmark: "process",
      date,
      machine,
      code: code ?? null,
      mode: "embedded (SQLite, memory cache, local disk; one process runs gateway and worker)",
      inputs: {
        image: { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, jpegQuality: JPEG_QUALITY, bytes: images.bytes, produced: variantsOf(sampleImage) },
        video: { fixture: path.relative(PROJECT_ROOT, VIDEO_FIXTURE), bytes: fs.statSync(VIDEO_FIXTURE).size, produced: variantsOf(sampleVideo) },
      },
      settings: {
        imageJobsPerRound: options.imageJobs,
        videoJobsPerRound: options.videoJobs,
        warmupJobsPerRound: 1,
        repeats: options.repeats,
        workerConcurrency: options.concurrency,
        directConcurrency: options.concurrency,
        sharpThreadsPerImage: 1,
        ffmpegThreads: 2,
      },
      rounds: {
        a: { description: ROUND_LABELS.a, ...a },
        b: { description: ROUND_LABELS.b, ...b },
        c: { description: ROUND_LABELS.c, ...c },
        d: { description: ROUND_LABELS.d, ...d },
        workerSlots1: { description: ROUND_LABELS.e1, ...e1 },
        workerSlots2: { description: ROUND_LABELS.e2, ...e2 },
      },
      ratios,
      ratiosPerRepeat,
      goals: {
        aOverB: { goal: GOALS.aOverB, reached: ratios.aOverB, met: ratios.aOverB >= GOALS.aOverB },
        cOverD: { goal: GOALS.cOverD, reached: ratios.cOverD, met: ratios.cOverD >= GOALS.cOverD },
        twoOverOne: {
          goal: GOALS.twoOverOne,
          reached: ratios.twoOverOne,
          met: ratios.twoOverOne >= GOALS.twoOverOne,
          measured: "WORKER_CONCURRENCY=2 vs 1 in one embedded process, not two worker processes",
        },
      },
    };
    fs.mkdirSync(path.dirname(options.output), { recursive: true });
    fs.writeFileSync(options.output, `${JSON.stringify(report, null, 2)}\n`);

    console.log("");
    console.log(`Processing benchmark, ${date}: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, embedded mode`);
    const rows: Array<[string, Combined]> = [
      ["(a) image via worker", a],
      ["(b) image direct (processImage)", b],
      ["(c) video via worker", c],
      ["(d) video direct (transcodeVideo)", d],
      ["(e) image, WORKER_CONCURRENCY=1", e1],
      ["(e) image, WORKER_CONCURRENCY=2", e2],
    ];
    console.log(`  ${"round".padEnd(36)}${"jobs/min".padStart(10)}   per repeat (load average at its start)`);
    for (const [label, value] of rows) {
      const each = value.perRepeat.map((entry) => `${entry.jobsPerMinute.toFixed(1)} (${entry.loadAverage1mBefore.toFixed(1)})`).join(", ");
      console.log(`  ${label.padEnd(36)}${value.jobsPerMinute.toFixed(1).padStart(10)}   ${each}`);
    }
    const verdict = (met: boolean) => (met ? "met" : "not met");
    console.log(`  a/b = ${ratios.aOverB.toFixed(3)} (goal ${GOALS.aOverB}: ${verdict(report.goals.aOverB.met)})`);
    console.log(`  c/d = ${ratios.cOverD.toFixed(3)} (goal ${GOALS.cOverD}: ${verdict(report.goals.cOverD.met)})`);
    console.log(`  2 slots / 1 slot = ${ratios.twoOverOne.toFixed(3)} (goal ${GOALS.twoOverOne} for two workers: ${verdict(report.goals.twoOverOne.met)}; measured as WORKER_CONCURRENCY in one process)`);
    console.log(`\nwritten to ${path.relative(process.cwd(), options.output) || options.output}`);
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);

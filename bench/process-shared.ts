/** The processing benchmark's settings, figures and inputs (bench/process.ts). */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { MEDIA_JOBS_CHANNEL } from "../lib/service-contracts";
import { ffmpegBinaries } from "../lib/processing/ffmpeg-binaries";
import { PROJECT_ROOT, cpuProfDirFromEnv, numberFromEnv, outputFromEnv, round } from "./harness/common";

export const DIRECT_SCRIPT = path.join(__dirname, "process-direct.ts");
export const VIDEO_FIXTURE = path.join(PROJECT_ROOT, "test/fixtures/video/mp4_h264_aac51_1080p60.mp4");
export const IMAGE_WIDTH = 4000;
export const IMAGE_HEIGHT = 3000;
export const JPEG_QUALITY = 90;
/** Files set aside for warm-up jobs; the measured files come after them. */
export const WARMUP_POOL = 6;
export const START_TIMEOUT_MS = 180_000;
export const JOB_TIMEOUT_MS = 300_000;
export const STOP_TIMEOUT_MS = 15_000;
export const SERVICES_STOP_TIMEOUT_MS = 30_000;
/** JOB_DEADLINE_SECONDS of the embedded nodes of (a)/(c): how old a queued item must be for the reconciler to publish it again. */
export const EMBEDDED_QUEUED_DEADLINE_SECONDS = 5;
export const GOALS = { aOverB: 0.9, cOverD: 0.95, twoOverOne: 1.7 } as const;
/** The cluster worker processes: one job at a time, one thread per job (sharp already uses one). */
export const CLUSTER_WORKER = { WORKER_CONCURRENCY: "1", FFMPEG_THREADS: "1" } as const;
export const GATEWAY_SERVICES = "api,users,media,site";
/** The JetStream stream of the job channel as the NATS adapter names it: prefixed with the broker namespace, dots as underscores. */
export const JOBS_STREAM = `shoal.${MEDIA_JOBS_CHANNEL}`.split(".").join("_");

/**
 * a, c: embedded, jobs queued before the worker subscribes; au, cu: embedded, worker running while the jobs are uploaded;
 * e1, e2, f1, f2: cluster, jobs queued before the workers start; e1u, e2u, f1u, f2u: cluster, workers running while
 * the jobs are uploaded; g1, g2: the machine's own scaling, processImage() in one direct process against two.
 */
export type RoundKey = "a" | "b" | "c" | "d" | "au" | "cu" | "e1" | "e2" | "f1" | "f2" | "e1u" | "e2u" | "f1u" | "f2u" | "g1" | "g2";

export interface Options {
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

export interface Summary {
  readonly p50: number;
  readonly max: number;
  readonly mean: number;
}

export interface RoundFigures {
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

export interface Combined {
  /** All repeats together: their jobs over their summed wall time. */
  readonly jobsPerMinute: number;
  readonly jobs: number;
  readonly wallSeconds: number;
  readonly perRepeat: readonly RoundFigures[];
}

export function combine(rounds: readonly RoundFigures[]): Combined {
  const jobs = rounds.reduce((sum, entry) => sum + entry.jobs, 0);
  const wallSeconds = rounds.reduce((sum, entry) => sum + entry.wallSeconds, 0);
  return { jobsPerMinute: wallSeconds > 0 ? round((jobs / wallSeconds) * 60, 1) : 0, jobs, wallSeconds: round(wallSeconds, 2), perRepeat: rounds };
}

// ---------------------------------------------------------------------------------------------
// Small functions

export function readOptions(): Options {
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

export function summary(values: readonly number[]): Summary {
  const sorted = [...values].sort((x, y) => x - y);
  const p50 = sorted.length === 0 ? 0 : (sorted[Math.floor((sorted.length - 1) / 2)] ?? 0);
  const mean = sorted.reduce((sum, value) => sum + value, 0) / Math.max(1, sorted.length);
  return { p50: round(p50, 2), max: round(sorted[sorted.length - 1] ?? 0, 2), mean: round(mean, 2) };
}

// ---------------------------------------------------------------------------------------------
// Inputs

/** A 4000×3000 photo-like texture (waves plus grain); each file differs in a 64×64 corner block, so the bytes (and sha256) differ. */
export async function makeImages(dir: string, count: number): Promise<{ files: string[]; bytes: number }> {
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
export function makeVideos(dir: string, count: number): string[] {
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

/** The upload benchmark's settings and figures (bench/upload.ts). */
import path from "node:path";
import { PROJECT_ROOT, cpuProfDirFromEnv, modesFromEnv, numberFromEnv, outputFromEnv } from "./harness/common";
import type { Mode } from "./harness/common";
import type { WindowReport } from "./upload-protocol";

export const SERVER_SCRIPT = path.join(__dirname, "upload-server.ts");
export const HEAD_FILE = path.join(PROJECT_ROOT, "test", "fixtures", "video", "mp4_h264_aac51_1080p60.mp4");
export const MiB = 1024 * 1024;
export const MB = 1e6;
export const START_TIMEOUT_MS = 300_000;
export const STOP_TIMEOUT_MS = 30_000;
export const HEALTH_OK_TIMEOUT_MS = 30_000;
/** Idle time before each upload, over which the baseline RSS is taken. */
export const BASELINE_MS = 1000;
export const PASSWORD = "upload benchmark passphrase 4d1e";
export const GOAL = { aOverC: 0.7, rssGrowthMB: 64 } as const;

export const signedMB = (value: number): string => (value < 0 ? `${value}` : `+${value}`);
/** Written to the JSON (`notes`) when cluster mode ran. */
export const CLUSTER_CEILING_NOTE =
  "In cluster mode Shoal stores uploads in s3rver, a JavaScript S3 server whose work runs on one thread, so about one core " +
  "is all it can use (cpuSecondsPerSecond.s3rver; a little more in (d), where its file writes run on libuv's threads). " +
  "It sets the pace of (a) and (b), so a/c there mostly measures s3rver, not the gateway. " +
  "(d) sends the same content straight to s3rver as one plain PUT: that is s3rver's own ingest ceiling for one stream on this machine, " +
  "and a/d and b/d say how much of it Shoal's paths keep. (a) and (b) store through multipart uploads, which s3rver writes as parts and " +
  "then rewrites into the object on completion, so even a gateway that added nothing would stay below (d). " +
  "The goal is still judged on a/c and the RSS growth, as stated.";

/** The paths every mode measures; "d" (straight to the S3 server) only exists in cluster mode. */
export type BaseTarget = "a" | "b" | "c" | "cFsync";
export type Target = BaseTarget | "d";
export type PerTarget<T> = Record<BaseTarget, T> & Partial<Record<"d", T>>;
export const TARGETS: Readonly<Record<Mode, readonly Target[]>> = { embedded: ["a", "b", "c", "cFsync"], cluster: ["a", "b", "c", "cFsync", "d"] };

export interface Options {
  readonly sizeMiB: Readonly<Record<Mode, number>>;
  readonly tusChunkMiB: number;
  readonly rounds: number;
  readonly warmupMiB: number;
  readonly modes: readonly Mode[];
  readonly output: string;
  readonly cpuProfDir: string | undefined;
}

/** RSS of a process as seen from outside (/proc/<pid>/status), in MB. */
export interface RssFigures {
  /** Median of the samples over the idle second before the upload. */
  readonly baselineMB: number;
  /** Largest VmRSS sample (every SAMPLE_INTERVAL_MS) during the upload. */
  readonly peakSampledMB: number;
  /** VmHWM at the end, reset (clear_refs 5) at the start: the true peak; null where the kernel does not allow it. */
  readonly peakHwmMB: number | null;
  /** max(peakSampled, peakHwm) - baseline. */
  readonly growthMB: number;
  readonly afterMB: number;
  readonly samples: number;
}

export interface UploadFigures {
  readonly mbPerSecond: number;
  readonly seconds: number;
  readonly bytes: number;
  readonly requests: number;
  /** Last byte of the last request sent -> its answer: the server's work after the upload's end. */
  readonly finalTailSeconds: number;
  readonly slowestRequestSeconds: number;
  readonly loadAverage1mBefore: number;
  /** The server child (Shoal node or raw server). */
  readonly serverRss: RssFigures;
  /** The server child's own view (process.memoryUsage(), sampled inside it): peak minus start, MB. */
  readonly serverMemoryGrowthMB: { readonly heapUsed: number; readonly external: number; readonly arrayBuffers: number; readonly rss: number };
  /** The server child's main thread over the upload: busy share, and its GC pauses. */
  readonly serverMainThread: { readonly loopUtilization: number; readonly gc: WindowReport["gc"] };
  /**
   * CPU seconds per second of upload: the server child, this process (the client), s3rver, and everything else on the
   * machine (including the kernel's writeback of our own files); othersIdleBefore: everything else during the idle
   * second before the upload, i.e. other work on this shared machine. In (d) the server child is s3rver's process,
   * so server and s3rver are the same figure (counted once in others).
   */
  readonly cpuSecondsPerSecond: {
    readonly server: number;
    readonly client: number;
    readonly s3rver?: number;
    readonly others: number;
    readonly othersIdleBefore: number;
  };
  readonly checks: {
    readonly storedBytes: number;
    readonly mime?: string;
    readonly sha256?: string;
    readonly sha256Verified?: boolean;
    /** (d): the stored object's ETag, and whether it is the MD5 of the bytes sent. */
    readonly etag?: string;
    readonly md5Verified?: boolean;
  };
}

export interface TargetSummary {
  readonly mbPerSecond: number;
  readonly rssGrowthMB: number;
  readonly finalTailSeconds: number;
  /** Cluster mode: median CPU seconds per second of s3rver's process over the rounds. */
  readonly s3rverCpuSecondsPerSecond?: number;
}

export interface ModeResult {
  readonly sizeMiB: number;
  readonly description: PerTarget<string>;
  readonly rounds: ReadonlyArray<PerTarget<UploadFigures>>;
  /** Median MB/s over the rounds, largest RSS growth. */
  readonly summary: PerTarget<TargetSummary>;
  /** aOverD and bOverD in cluster mode only: the share of the S3 server's own ceiling (d) that (a) and (b) keep. */
  readonly ratios: { readonly aOverC: number; readonly bOverC: number; readonly cFsyncOverC: number; readonly aOverD?: number; readonly bOverD?: number };
  readonly goal: { readonly aOverC: number; readonly rssGrowthMB: { readonly a: number; readonly b: number }; readonly met: boolean };
  readonly checks: {
    readonly health: string;
    readonly warmup: PerTarget<{ readonly mbPerSecond: number; readonly sha256Verified?: boolean; readonly md5Verified?: boolean }>;
    /** Files still on disk (or in s3rver's directory) after each round's uploads were deleted again. */
    readonly leftoversAfterRounds: ReadonlyArray<{ readonly files: number; readonly bytes: number; readonly examples: readonly string[] }>;
  };
}

// ---------------------------------------------------------------------------------------------
// Small functions

export function labelsFor(options: Options): Record<Target, string> {
  return {
    a: options.tusChunkMiB === 0 ? "(a) tus, creation-with-upload" : `(a) tus, ${options.tusChunkMiB} MiB PATCHes`,
    b: "(b) multipart POST /api/media",
    c: "(c) raw node:http -> file",
    cFsync: "(c') raw -> file + fsync",
    d: "(d) PUT straight to S3 (s3rver)",
  };
}

export function readOptions(): Options {
  const sizeMiB = numberFromEnv("BENCH_UPLOAD_MIB", 1024);
  return {
    sizeMiB: { embedded: sizeMiB, cluster: numberFromEnv("BENCH_UPLOAD_CLUSTER_MIB", sizeMiB) },
    tusChunkMiB: numberFromEnv("BENCH_UPLOAD_TUS_CHUNK_MIB", 64, { allowZero: true }),
    rounds: Math.round(numberFromEnv("BENCH_UPLOAD_ROUNDS", 3)),
    warmupMiB: numberFromEnv("BENCH_UPLOAD_WARMUP_MIB", 16),
    modes: modesFromEnv(),
    output: outputFromEnv("upload"),
    cpuProfDir: cpuProfDirFromEnv(),
  };
}


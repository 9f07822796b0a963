/** What bench/upload.ts and its children (bench/upload-server.ts, bench/harness/services.ts with BENCH_WATCH_WINDOW=1) say to each other over IPC. */
import type { WindowAnswer, WindowRequest } from "./harness/common";

/** A child's own view of one window: its memory, sampled every SAMPLE_INTERVAL_MS with process.memoryUsage(), its GC and its main thread. */
export interface WindowReport {
  readonly samples: number;
  /** Bytes at the start of the window (when the parent sent "reset"). */
  readonly start: MemoryFigures;
  /** The largest value of each figure over the window (each figure's own peak; they need not coincide). */
  readonly peak: MemoryFigures;
  /** Garbage-collection pauses of the main thread (perf_hooks "gc" entries); major = mark-compact. */
  readonly gc: { readonly count: number; readonly totalMs: number; readonly maxMs: number; readonly majorCount: number; readonly majorMs: number };
  /** Share of the window the main thread was busy (performance.eventLoopUtilization). */
  readonly loopUtilization: number;
  readonly windowSeconds: number;
}

export interface MemoryFigures {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** Memory of C++ objects bound to JS objects, including Buffers. */
  readonly external: number;
  /** Buffers and ArrayBuffers (part of external). */
  readonly arrayBuffers: number;
}

export type ToServer = WindowRequest;
export type FromServer = WindowAnswer<"window", WindowReport>;

/** How often the children sample their memory, and the parent their RSS. */
export const SAMPLE_INTERVAL_MS = 100;

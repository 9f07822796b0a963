/** What bench/upload.ts and its children (bench/upload-server.ts, bench/upload-services.ts) say to each other over IPC. */

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

export type ToServer = { readonly type: "reset" } | { readonly type: "report" };

export type FromServer =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "reset" }
  | { readonly type: "report"; readonly window: WindowReport };

/** From bench/upload-services.ts once the private services run. */
export interface ServicesReady {
  readonly type: "services";
  /** envFor(services): what points a Shoal node at them. */
  readonly env: Record<string, string>;
  /** s3rver's storage directory (it runs inside the services child). */
  readonly s3Dir: string;
}

/** How often the children sample their memory, and the parent their RSS. */
export const SAMPLE_INTERVAL_MS = 100;

/** What bench/auth.ts and its server child (bench/auth-server.ts) say to each other over IPC. */
import type { WindowAnswer, WindowRequest } from "./harness/common";

/** How busy the server's main thread was over one window. */
export interface LoopReport {
  /** Event-loop delay in ms: how late the monitor's timer ran (perf_hooks.monitorEventLoopDelay's interval minus its resolution). */
  readonly delayMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number; readonly mean: number };
  /** Share of the window the main thread was busy (0..1). */
  readonly utilization: number;
  /** CPU time of the whole process (main thread plus libuv's thread pool, where argon2 runs) per second of window. */
  readonly cpuSecondsPerSecond: number;
  /** Garbage-collection pauses of the main thread (perf_hooks "gc" entries). */
  readonly gc: { readonly count: number; readonly totalMs: number; readonly maxMs: number };
  readonly windowSeconds: number;
}

export type ToServer = WindowRequest;
export type FromServer = WindowAnswer<"report", LoopReport>;

/** Resolution of the event-loop delay monitors (perf_hooks.monitorEventLoopDelay), in ms. */
export const MONITOR_RESOLUTION_MS = 10;

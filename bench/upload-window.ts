/**
 * A child's own view of a measurement window, for bench/upload.ts: process.memoryUsage() sampled every
 * SAMPLE_INTERVAL_MS, GC pauses and main-thread load. The parent starts a window with {type:"reset"} and
 * reads it with {type:"report"} over the IPC channel. Used by bench/upload-server.ts (the Shoal node and the
 * raw server) and bench/harness/services.ts (s3rver, for round (d)).
 */
import { constants, performance, PerformanceObserver } from "node:perf_hooks";
import type { PerformanceEntry } from "node:perf_hooks";
import { SAMPLE_INTERVAL_MS } from "./upload-protocol";
import type { FromServer, MemoryFigures, ToServer, WindowReport } from "./upload-protocol";

function send(message: FromServer): void {
  process.send?.(message);
}

function figures(): MemoryFigures {
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external, arrayBuffers };
}

const larger = (a: MemoryFigures, b: MemoryFigures): MemoryFigures => ({
  rss: Math.max(a.rss, b.rss),
  heapUsed: Math.max(a.heapUsed, b.heapUsed),
  heapTotal: Math.max(a.heapTotal, b.heapTotal),
  external: Math.max(a.external, b.external),
  arrayBuffers: Math.max(a.arrayBuffers, b.arrayBuffers),
});

/** Answers the parent's reset/report messages with this process's memory, GC and main-thread load over the window. */
export function watchWindow(): void {
  let startedAt = performance.now();
  let startElu = performance.eventLoopUtilization();
  let start = figures();
  let peak = start;
  let samples = 1;
  const gc = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0, majorMs: 0 };
  const timer = setInterval(() => {
    peak = larger(peak, figures());
    samples++;
  }, SAMPLE_INTERVAL_MS);
  timer.unref();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++;
      gc.totalMs += entry.duration;
      gc.maxMs = Math.max(gc.maxMs, entry.duration);
      if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.majorCount++;
        gc.majorMs += entry.duration;
      }
    }
  }).observe({ entryTypes: ["gc"] });
  const round = (value: number) => Number(value.toFixed(1));
  process.on("message", (message: ToServer) => {
    if (message.type === "reset") {
      startedAt = performance.now();
      startElu = performance.eventLoopUtilization();
      start = figures();
      peak = start;
      samples = 1;
      Object.assign(gc, { count: 0, totalMs: 0, maxMs: 0, majorCount: 0, majorMs: 0 });
      send({ type: "reset" });
    } else if (message.type === "report") {
      peak = larger(peak, figures());
      const window: WindowReport = {
        samples: samples + 1,
        start,
        peak,
        gc: { count: gc.count, totalMs: round(gc.totalMs), maxMs: round(gc.maxMs), majorCount: gc.majorCount, majorMs: round(gc.majorMs) },
        loopUtilization: Number(performance.eventLoopUtilization(startElu).utilization.toFixed(3)),
        windowSeconds: (performance.now() - startedAt) / 1000,
      };
      send({ type: "report", window });
    }
  });
}

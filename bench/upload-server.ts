/**
 * One server under test for bench/upload.ts, in a process of its own so that the client does not share
 * its event loop, and so that its memory can be watched on its own.
 *
 *   BENCH_ROLE=shoal  A Shoal node configured by the environment, like server.ts (PORT defaults to 0,
 *                     LOG_LEVEL to warn).
 *   BENCH_ROLE=raw    A bare node:http server: every POST body is piped to a new file in BENCH_RAW_DIR
 *                     (with `?fsync=1`, flushed to disk before the file is closed), then answered
 *                     201 {"bytes","file"}. The file stays; the parent deletes it.
 *
 * Both sample process.memoryUsage() every SAMPLE_INTERVAL_MS and watch their GC pauses and main thread; the
 * parent starts a window with {type:"reset"} and reads it with {type:"report"} over the IPC channel. The child sends
 * {type:"ready", port} once listening, and stops on SIGTERM, SIGINT or when the IPC channel closes.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { constants, performance, PerformanceObserver } from "node:perf_hooks";
import type { PerformanceEntry } from "node:perf_hooks";
import { pipeline } from "node:stream/promises";
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
function watchWindow(): void {
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

/** Runs `stop` once, on the first of SIGTERM, SIGINT or the parent going away, then exits. */
function stopOnce(stop: () => Promise<void>): void {
  let stopping = false;
  const run = () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("stop failed:", error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", run);
  process.on("SIGINT", run);
  process.on("disconnect", run);
}

async function runShoal(): Promise<void> {
  // Loaded here, not at the top: the raw server stays a bare Node process. With all of Shoal loaded (a heap
  // several times larger), it ran about 30 % slower after an idle second, as its garbage collections grew.
  const { parseSettings } = await import("../config/settings");
  const { createNode } = await import("../node");
  const settings = parseSettings({ PORT: "0", LOG_LEVEL: "warn", ...process.env });
  const node = createNode(settings);
  stopOnce(() => node.stop());
  await node.start();
  if (node.port === undefined) throw new Error("the node does not run the api service (check SERVICES)");
  send({ type: "ready", port: node.port });
}

async function runRaw(): Promise<void> {
  const dir = process.env.BENCH_RAW_DIR;
  if (dir === undefined || dir === "") throw new Error("BENCH_RAW_DIR is required for BENCH_ROLE=raw");
  let files = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://raw");
    if (req.method !== "POST") {
      res.writeHead(404).end();
      return;
    }
    const file = path.join(dir, `upload-${++files}.bin`);
    const output = fs.createWriteStream(file, { flags: "wx", flush: url.searchParams.get("fsync") === "1" });
    pipeline(req, output).then(
      () => {
        const body = JSON.stringify({ bytes: output.bytesWritten, file });
        res.writeHead(201, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }).end(body);
      },
      (error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
        res.end(error instanceof Error ? error.message : String(error));
      },
    );
  });
  // As the Shoal front door, so that both keep connections the same way.
  server.keepAliveTimeout = 65_000;
  stopOnce(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  send({ type: "ready", port: (server.address() as AddressInfo).port });
}

const role = process.env.BENCH_ROLE;
const run = role === "shoal" ? runShoal : role === "raw" ? runRaw : undefined;
if (run === undefined || process.send === undefined) {
  console.error(`bench/upload-server.ts is started by bench/upload.ts with an IPC channel and BENCH_ROLE "shoal" or "raw" (got ${JSON.stringify(role)})`);
  process.exit(2);
}
watchWindow();
run().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});

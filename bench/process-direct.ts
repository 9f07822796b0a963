/**
 * The "direct" side of bench/process.ts, run in a child process of its own: the same processing the
 * worker does, called straight from lib/processing with the options the worker uses, and nothing else
 * (no upload, no storage, no database, no broker, no progress events).
 *
 *   BENCH_DIRECT_KIND=image  processImage() on each file, after configureSharp({ threadsPerImage: 1 }),
 *                            limitInputPixels 100 000 000 (as imageProcessor in node.ts).
 *   BENCH_DIRECT_KIND=video  transcodeVideo() on each file, threads 2, maxDurationSeconds 1800 (as
 *                            videoProcessor in node.ts), formatHint video/mp4.
 *
 * BENCH_DIRECT_FILES is a JSON array of paths; the first BENCH_DIRECT_WARMUP (default 1) of them are
 * processed one at a time before timing starts. The rest run with at most BENCH_DIRECT_CONCURRENCY at
 * once (as the worker's WORKER_CONCURRENCY). Output goes to BENCH_DIRECT_WORK_DIR. At the end one
 * JSON line `{"benchDirect":DirectResult}` is printed on stdout.
 */
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { configureSharp, processImage } from "../lib/processing/images";
import { transcodeVideo } from "../lib/processing/transcode";
import type { DirectResult } from "./process-protocol";

const LIMIT_INPUT_PIXELS = 100_000_000;
const VIDEO_THREADS = 2;
const MAX_DURATION_SECONDS = 30 * 60;

async function processOne(kind: "image" | "video", file: string, workDir: string): Promise<void> {
  if (kind === "image") {
    await processImage({ path: file }, path.join(workDir, "variants"), {
      limitInputPixels: LIMIT_INPUT_PIXELS,
      onProgress: () => undefined,
    });
  } else {
    await transcodeVideo(file, path.join(workDir, "video"), {
      formatHint: "video/mp4",
      threads: VIDEO_THREADS,
      maxDurationSeconds: MAX_DURATION_SECONDS,
      onProgress: () => undefined,
    });
  }
  await fs.promises.rm(workDir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const kind = process.env.BENCH_DIRECT_KIND;
  if (kind !== "image" && kind !== "video") throw new Error(`BENCH_DIRECT_KIND must be image or video (got ${JSON.stringify(kind)})`);
  const files = JSON.parse(process.env.BENCH_DIRECT_FILES ?? "[]") as string[];
  const warmup = Number(process.env.BENCH_DIRECT_WARMUP ?? "1");
  const concurrency = Number(process.env.BENCH_DIRECT_CONCURRENCY ?? "2");
  const workRoot = process.env.BENCH_DIRECT_WORK_DIR ?? fs.mkdtempSync(path.join(process.cwd(), "bench-direct-"));
  if (kind === "image") configureSharp({ threadsPerImage: 1 });

  const warmupFiles = files.slice(0, warmup);
  const measured = files.slice(warmup);
  for (const [index, file] of warmupFiles.entries()) await processOne(kind, file, path.join(workRoot, `warmup-${index}`));

  const jobSeconds: number[] = new Array<number>(measured.length).fill(0);
  let next = 0;
  const start = performance.now();
  const lane = async (): Promise<void> => {
    for (let index = next++; index < measured.length; index = next++) {
      const began = performance.now();
      await processOne(kind, measured[index] as string, path.join(workRoot, `job-${index}`));
      jobSeconds[index] = (performance.now() - began) / 1000;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, () => lane()));
  const wallSeconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage();
  const result: DirectResult = {
    jobs: measured.length,
    wallSeconds,
    jobSeconds,
    // Includes the warm-up; ffmpeg runs in processes of its own and is not counted here.
    processCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(`${JSON.stringify({ benchDirect: result })}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);

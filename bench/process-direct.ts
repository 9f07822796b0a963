/**
 * The "direct" side of bench/process.ts, run in a child process of its own: the same processing the
 * worker does, without the worker (no upload, no storage, no database, no broker, no progress events).
 *
 *   BENCH_DIRECT_KIND=image  processImage() from lib/processing/images.ts on each file, after
 *                            configureSharp({ threadsPerImage: 1 }), limitInputPixels 100 000 000 (as
 *                            imageProcessor in node.ts): the same sharp calls, producing the same variants.
 *   BENCH_DIRECT_KIND=video  the same ffmpeg and ffprobe command lines the worker runs, spawned directly.
 *                            They are recorded, not re-typed: the warm-up file goes through transcodeVideo()
 *                            (the worker's function, with the worker's options: BENCH_DIRECT_FFMPEG_THREADS
 *                            threads, maxDurationSeconds 1800, formatHint video/mp4) with `binaries` pointing at
 *                            two small shell wrappers that log their exact argv and working directory and
 *                            exec the real binaries. Each measured file then runs those argv (probe, the
 *                            transcode into every rendition, the poster), one after another, with only the
 *                            input path and the scratch directory replaced, and nothing of Node's around them
 *                            but spawn and reading their output. (fluent-ffmpeg's own `ffmpeg -formats` and
 *                            `ffmpeg -encoders`, which it runs once per process and caches, are not replayed.)
 *
 * BENCH_DIRECT_FILES is a JSON array of paths; the first BENCH_DIRECT_WARMUP (default 1) of them are
 * processed one at a time before timing starts. With BENCH_DIRECT_START_ON_GO=1 the script then prints
 * `{"benchDirectWarm":true}` and starts timing only when a line arrives on stdin (so that several
 * direct processes can start their measured jobs at the same moment). The rest run with at most BENCH_DIRECT_CONCURRENCY at
 * once (as the worker's WORKER_CONCURRENCY). Output goes to BENCH_DIRECT_WORK_DIR. At the end one
 * JSON line `{"benchDirect":DirectResult}` is printed on stdout.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import readline from "node:readline";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { ffmpegBinaries } from "../lib/processing/ffmpeg-binaries";
import { configureSharp, processImage } from "../lib/processing/images";
import { transcodeVideo } from "../lib/processing/transcode";
import type { DirectResult, RecordedCommand } from "./process-protocol";

const LIMIT_INPUT_PIXELS = 100_000_000;
const MAX_DURATION_SECONDS = 30 * 60;
const VIDEO_OUTPUTS = ["720p.mp4", "360p.mp4", "poster.webp"] as const;

/** CPU seconds of this process's children that have exited and been waited for (ffmpeg, ffprobe). */
function childCpuSeconds(): number {
  // /proc/self/stat: fields 16 and 17 (1-based) are cutime and cstime, in clock ticks (100 per second on Linux).
  const fields = fs.readFileSync("/proc/self/stat", "utf8").replace(/^.*\) /s, "").split(" ");
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

const shellQuote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

/** A shell script that appends `name, argc, cwd, argv...` (NUL-separated) to `log` and execs `real`. */
function writeWrapper(file: string, name: string, real: string, log: string): void {
  fs.writeFileSync(file, `#!/bin/sh\nprintf '%s\\0' ${shellQuote(name)} "$#" "$(pwd)" "$@" >> ${shellQuote(log)}\nexec ${shellQuote(real)} "$@"\n`, { mode: 0o755 });
}

function readRecorded(log: string, binaries: { ffmpeg: string; ffprobe: string }): RecordedCommand[] {
  const fields = fs.readFileSync(log, "latin1").split("\0");
  fields.pop(); // after the last NUL
  const commands: RecordedCommand[] = [];
  let at = 0;
  while (at < fields.length) {
    const name = fields[at] as "ffmpeg" | "ffprobe";
    const argc = Number(fields[at + 1]);
    const cwd = fields[at + 2] as string;
    const args = fields.slice(at + 3, at + 3 + argc);
    if ((name !== "ffmpeg" && name !== "ffprobe") || !Number.isInteger(argc) || args.length !== argc) throw new Error(`unreadable command log ${log}`);
    commands.push({ program: name, binary: binaries[name], cwd, args });
    at += 3 + argc;
  }
  return commands;
}

/** The recorded commands of the warm-up, and how to turn them into another job's. */
interface VideoRecipe {
  readonly commands: readonly RecordedCommand[];
  readonly input: string;
  /** The scratch directory of the warm-up (ffmpeg's working directory and where its outputs went). */
  readonly scratch: string;
}

async function recordVideoCommands(file: string, workDir: string, threads: number): Promise<VideoRecipe> {
  const real = ffmpegBinaries();
  const wrappers = path.join(workDir, "wrappers");
  fs.mkdirSync(wrappers, { recursive: true });
  const log = path.join(wrappers, "commands.log");
  writeWrapper(path.join(wrappers, "ffmpeg"), "ffmpeg", real.ffmpeg, log);
  writeWrapper(path.join(wrappers, "ffprobe"), "ffprobe", real.ffprobe, log);
  await transcodeVideo(file, path.join(workDir, "video"), {
    formatHint: "video/mp4",
    threads,
    maxDurationSeconds: MAX_DURATION_SECONDS,
    binaries: { ...real, ffmpeg: path.join(wrappers, "ffmpeg"), ffprobe: path.join(wrappers, "ffprobe") },
    onProgress: () => undefined,
  });
  // fluent-ffmpeg asks ffmpeg for its formats and encoders (`ffmpeg -formats`, `ffmpeg -encoders`) once per
  // process and caches the answer: the worker pays that once, in its first job, not per job.
  const commands = readRecorded(log, real).filter((command) => !(command.args.length === 1 && /^-[a-z]+$/.test(command.args[0] ?? "")));
  const scratch = commands.find((command) => command.program === "ffmpeg")?.cwd;
  if (scratch === undefined || !path.basename(scratch).startsWith(".transcode-")) throw new Error("the warm-up ran no ffmpeg in a scratch directory");
  for (const command of commands) {
    if (!command.args.some((arg) => arg.includes(file))) throw new Error(`a recorded command does not name the input: ${command.args.join(" ")}`);
  }
  await fs.promises.rm(workDir, { recursive: true, force: true });
  return { commands, input: file, scratch };
}

function run(command: RecordedCommand, args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command.binary, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    // Read both streams as the worker does (ffprobe's JSON on stdout, ffmpeg's -progress on stderr).
    const stdout: Buffer[] = [];
    let stderrTail = "";
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString("utf8")).slice(-2000);
    });
    child.once("error", reject);
    child.once("close", (code, signal) => {
      if (code === 0) {
        if (command.program === "ffprobe") JSON.parse(Buffer.concat(stdout).toString("utf8"));
        resolve();
      } else reject(new Error(`${command.program} ended with ${signal ?? `exit code ${code}`}: ${stderrTail}`));
    });
  });
}

async function replayVideo(recipe: VideoRecipe, file: string, workDir: string): Promise<void> {
  await fs.promises.mkdir(workDir, { recursive: true });
  const scratch = await fs.promises.mkdtemp(path.join(workDir, ".transcode-"));
  const swap = (value: string) => value.split(recipe.input).join(file).split(recipe.scratch).join(scratch);
  for (const command of recipe.commands) {
    await run(command, command.args.map(swap), command.cwd === recipe.scratch ? scratch : process.cwd());
  }
  for (const name of VIDEO_OUTPUTS) {
    const { size } = await fs.promises.stat(path.join(scratch, name));
    if (size === 0) throw new Error(`${name} is empty`);
  }
}

async function main(): Promise<void> {
  const kind = process.env.BENCH_DIRECT_KIND;
  if (kind !== "image" && kind !== "video") throw new Error(`BENCH_DIRECT_KIND must be image or video (got ${JSON.stringify(kind)})`);
  const files = JSON.parse(process.env.BENCH_DIRECT_FILES ?? "[]") as string[];
  const warmup = Number(process.env.BENCH_DIRECT_WARMUP ?? "1");
  const concurrency = Number(process.env.BENCH_DIRECT_CONCURRENCY ?? "2");
  const threads = Number(process.env.BENCH_DIRECT_FFMPEG_THREADS ?? "2");
  const workRoot = process.env.BENCH_DIRECT_WORK_DIR ?? fs.mkdtempSync(path.join(process.cwd(), "bench-direct-"));
  if (kind === "image") configureSharp({ threadsPerImage: 1 });
  if (kind === "video" && warmup < 1) throw new Error("video needs a warm-up file: its command lines are recorded from it");

  const warmupFiles = files.slice(0, warmup);
  const measured = files.slice(warmup);
  let recipe: VideoRecipe | undefined;
  for (const [index, file] of warmupFiles.entries()) {
    const dir = path.join(workRoot, `warmup-${index}`);
    if (kind === "image") await processImage({ path: file }, path.join(dir, "variants"), { limitInputPixels: LIMIT_INPUT_PIXELS, onProgress: () => undefined });
    else if (recipe === undefined) recipe = await recordVideoCommands(file, dir, threads);
    else await replayVideo(recipe, file, dir);
    await fs.promises.rm(dir, { recursive: true, force: true });
  }

  if (process.env.BENCH_DIRECT_START_ON_GO === "1") {
    const lines = readline.createInterface({ input: process.stdin });
    const go = once(lines, "line");
    process.stdout.write(`${JSON.stringify({ benchDirectWarm: true })}\n`);
    await go;
    lines.close();
  }

  const processOne = async (file: string, dir: string): Promise<void> => {
    if (kind === "image") await processImage({ path: file }, path.join(dir, "variants"), { limitInputPixels: LIMIT_INPUT_PIXELS, onProgress: () => undefined });
    else await replayVideo(recipe as VideoRecipe, file, dir);
    await fs.promises.rm(dir, { recursive: true, force: true });
  };

  const jobSeconds: number[] = new Array<number>(measured.length).fill(0);
  let next = 0;
  const cpuBefore = process.cpuUsage();
  const childCpuBefore = childCpuSeconds();
  const start = performance.now();
  const lane = async (): Promise<void> => {
    for (let index = next++; index < measured.length; index = next++) {
      const began = performance.now();
      await processOne(measured[index] as string, path.join(workRoot, `job-${index}`));
      jobSeconds[index] = (performance.now() - began) / 1000;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, () => lane()));
  const wallSeconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const result: DirectResult = {
    jobs: measured.length,
    wallSeconds,
    jobSeconds,
    processCpuSeconds: (cpu.user + cpu.system) / 1e6,
    childCpuSeconds: childCpuSeconds() - childCpuBefore,
    ...(recipe === undefined ? {} : { commands: recipe.commands.map((command) => ({ ...command, args: [...command.args] })) }),
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

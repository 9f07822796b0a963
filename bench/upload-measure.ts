/** One measured upload of the upload benchmark: the servers' children, RSS from /proc, CPU and memory windows (bench/upload.ts). */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { BenchChild } from "./harness/children";
import type { Resources} from "./harness/common";
import { delay, interrupted, loadAverage1m, machineBusySeconds, median, procCpuSeconds, progress, round } from "./harness/common";
import type { UploadOutcome } from "./upload-client";
import { SAMPLE_INTERVAL_MS } from "./upload-protocol";
import type { ServicesReady } from "./harness/services";
import type { FromServer, MemoryFigures, WindowReport } from "./upload-protocol";
import type { UploadFigures} from "./upload-shared";
import { BASELINE_MS, MB, SERVER_SCRIPT, START_TIMEOUT_MS, STOP_TIMEOUT_MS, signedMB } from "./upload-shared";

// ---------------------------------------------------------------------------------------------
// /proc: RSS and CPU time of a process, seen from outside

/** VmRSS or VmHWM of a process in bytes; undefined once it is gone. */
export function procMemory(pid: number, field: "VmRSS" | "VmHWM"): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Resets the process's peak RSS (VmHWM) to its current RSS (Linux 4.0+); false where not allowed. */
export function resetPeakRss(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Samples a process's VmRSS every SAMPLE_INTERVAL_MS until stopped. */
export class RssSampler {
  private readonly samples: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
  }

  stop(): number[] {
    clearInterval(this.timer);
    this.sample();
    return this.samples;
  }

  private sample(): void {
    const rss = procMemory(this.pid, "VmRSS");
    if (rss !== undefined) this.samples.push(rss);
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes: the servers under test and the private services

/** A child that reports its own windows (bench/upload-window.ts): a server under test, or the services child. */
export type ServerChild = BenchChild<FromServer | ServicesReady>;

export function onUnexpectedExit(label: string, how: string, tail: string): void {
  if (!interrupted()) progress("bench", `${label} ended unexpectedly (${how})${tail}`);
}

export async function startServer(
  resources: Resources,
  label: string,
  env: Record<string, string>,
  nodeFlags: readonly string[] = [],
): Promise<{ child: ServerChild; baseUrl: string }> {
  const child: ServerChild = new BenchChild(label, SERVER_SCRIPT, env, { channel: "ipc", nodeFlags, stopTimeoutMs: STOP_TIMEOUT_MS, onUnexpectedExit });
  resources.add(label, () => child.stop());
  const ready = await child.next("ready", START_TIMEOUT_MS);
  return { child, baseUrl: `http://127.0.0.1:${ready.port}` };
}

/** Files (and their bytes) under the directories, with a few of their paths; tsx's compile cache (tsx-*) does not count. */
export function filesUnder(dirs: readonly string[]): { files: number; bytes: number; examples: string[] } {
  const found = { files: 0, bytes: 0, examples: [] as string[] };
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name.startsWith("tsx-")) continue;
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        found.files++;
        found.bytes += fs.statSync(full, { throwIfNoEntry: false })?.size ?? 0;
        if (found.examples.length < 5) found.examples.push(full);
      }
    }
  };
  for (const dir of dirs) walk(dir);
  return found;
}

// ---------------------------------------------------------------------------------------------
// One measured upload

export interface Watched {
  /** The child that receives the upload: its memory is watched, and it reports its own window. */
  readonly server: ServerChild;
  /** The services child that runs s3rver (cluster mode); in (d) it is also the server. */
  readonly s3rver: ServerChild | undefined;
}

/**
 * Runs one upload with the server child's memory and everyone's CPU watched: an idle second first (the
 * baseline RSS), `sync` before that so that an earlier upload's dirty pages are not written back during
 * this one.
 */
export async function measuredUpload(watched: Watched, size: number, upload: () => Promise<UploadOutcome>): Promise<{ outcome: UploadOutcome; figures: UploadFigures }> {
  try {
    return await watchedUpload(watched, size, upload);
  } catch (error) {
    // What the server said about it is usually the useful part.
    if (error instanceof Error && !interrupted()) error.message += watched.server.tail();
    throw error;
  }
}

export async function watchedUpload(watched: Watched, size: number, upload: () => Promise<UploadOutcome>): Promise<{ outcome: UploadOutcome; figures: UploadFigures }> {
  if (interrupted()) throw new Error("interrupted");
  execFileSync("sync");
  const { pid } = watched.server;
  // s3rver's process when it is not the server itself (in (d) it is, and is counted once).
  const s3rverPid = watched.s3rver === undefined || watched.s3rver === watched.server ? undefined : watched.s3rver.pid;
  const ours = () => procCpuSeconds(pid) + procCpuSeconds(process.pid) + (s3rverPid === undefined ? 0 : procCpuSeconds(s3rverPid));
  const idleStart = { at: performance.now(), ours: ours(), machine: machineBusySeconds() };
  const idle = new RssSampler(pid);
  await delay(BASELINE_MS);
  const baseline = median(idle.stop());
  const idleSeconds = (performance.now() - idleStart.at) / 1000;
  const othersBefore = round(Math.max(0, machineBusySeconds() - idleStart.machine - (ours() - idleStart.ours)) / idleSeconds, 2);
  const loadAverage1mBefore = loadAverage1m();

  await watched.server.ask({ type: "reset" });
  const hwmReset = resetPeakRss(pid);
  const cpuBefore = {
    server: procCpuSeconds(pid),
    client: process.cpuUsage(),
    s3rver: s3rverPid === undefined ? 0 : procCpuSeconds(s3rverPid),
    machine: machineBusySeconds(),
  };
  const sampler = new RssSampler(pid);
  const started = performance.now();
  let outcome: UploadOutcome;
  let samples: number[];
  try {
    outcome = await upload();
  } finally {
    samples = sampler.stop();
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const hwm = hwmReset ? procMemory(pid, "VmHWM") : undefined;
  const report = (await watched.server.ask({ type: "report" })).window;

  const client = process.cpuUsage(cpuBefore.client);
  const cpu = {
    server: procCpuSeconds(pid) - cpuBefore.server,
    client: (client.user + client.system) / 1e6,
    s3rver: s3rverPid === undefined ? 0 : procCpuSeconds(s3rverPid) - cpuBefore.s3rver,
    machine: machineBusySeconds() - cpuBefore.machine,
  };
  const perSecond = (value: number) => round(value / wallSeconds, 2);
  const peakSampled = Math.max(...samples);
  const last = outcome.requests[outcome.requests.length - 1];
  const figures: UploadFigures = {
    mbPerSecond: round(size / MB / outcome.seconds, 1),
    seconds: round(outcome.seconds, 2),
    bytes: size,
    requests: outcome.requests.length,
    finalTailSeconds: round(last?.tailSeconds ?? 0, 3),
    slowestRequestSeconds: round(Math.max(...outcome.requests.map((request) => request.seconds)), 3),
    loadAverage1mBefore,
    serverRss: {
      baselineMB: round(baseline / MB, 1),
      peakSampledMB: round(peakSampled / MB, 1),
      peakHwmMB: hwm === undefined ? null : round(hwm / MB, 1),
      growthMB: round((Math.max(peakSampled, hwm ?? 0) - baseline) / MB, 1),
      afterMB: round((samples[samples.length - 1] ?? 0) / MB, 1),
      samples: samples.length,
    },
    serverMemoryGrowthMB: growthOf(report),
    serverMainThread: { loopUtilization: report.loopUtilization, gc: report.gc },
    cpuSecondsPerSecond: {
      server: perSecond(cpu.server),
      client: perSecond(cpu.client),
      ...(watched.s3rver === undefined ? {} : { s3rver: perSecond(s3rverPid === undefined ? cpu.server : cpu.s3rver) }),
      others: perSecond(Math.max(0, cpu.machine - cpu.server - cpu.client - cpu.s3rver)),
      othersIdleBefore: othersBefore,
    },
    checks: { storedBytes: outcome.storedBytes, mime: outcome.mime, sha256: outcome.sha256, ...(outcome.etag === undefined ? {} : { etag: outcome.etag }) },
  };
  if (outcome.storedBytes !== size) throw new Error(`the server stored ${outcome.storedBytes} bytes of ${size}`);
  if (outcome.mime !== undefined && outcome.mime !== "video/mp4") throw new Error(`the upload was taken as ${outcome.mime}, not video/mp4`);
  return { outcome, figures };
}

export function growthOf(memory: WindowReport): UploadFigures["serverMemoryGrowthMB"] {
  const growth = (name: keyof MemoryFigures) => round((memory.peak[name] - memory.start[name]) / MB, 1);
  return { heapUsed: growth("heapUsed"), external: growth("external"), arrayBuffers: growth("arrayBuffers"), rss: growth("rss") };
}

export function describeUpload(figures: UploadFigures): string {
  const rss = figures.serverRss;
  const cpu = figures.cpuSecondsPerSecond;
  const others = cpu.othersIdleBefore >= 0.3 ? ` (!) other processes used ${cpu.othersIdleBefore} CPU s/s just before` : "";
  return (
    `${figures.mbPerSecond} MB/s (${figures.seconds} s, ${figures.requests} request${figures.requests > 1 ? "s" : ""}, ` +
    `last answer ${figures.finalTailSeconds} s after its last byte); server RSS ${signedMB(rss.growthMB)} MB ` +
    `(baseline ${rss.baselineMB}, peak sampled ${rss.peakSampledMB}, VmHWM ${rss.peakHwmMB ?? "n/a"}); ` +
    `CPU s/s server ${cpu.server}, client ${cpu.client}${cpu.s3rver === undefined ? "" : `, s3rver ${cpu.s3rver}`}, others ${cpu.others} ` +
    `(${cpu.othersIdleBefore} just before)${others}; ` +
    `server main thread busy ${Math.round(figures.serverMainThread.loopUtilization * 100)} %, ` +
    `GC ${figures.serverMainThread.gc.count}x ${figures.serverMainThread.gc.totalMs} ms (${figures.serverMainThread.gc.majorCount} major); ` +
    `load ${figures.loadAverage1mBefore} before`
  );
}


/** Rounds of the processing benchmark through Shoal's worker: nodes, uploads, media:ready and the job log (bench/process.ts). */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";
import type { Socket } from "socket.io-client";
import type { MediaJson } from "../lib/media/media-view";
import { ShoalChild } from "./harness/children";
import { delay, loadAverage1m, machineBusySeconds, procCpuSeconds, progress, registerAccount, round } from "./harness/common";
import type { JobLine } from "./harness/shoal-node";
import type { RoundFigures } from "./process-shared";
import { JOB_TIMEOUT_MS, START_TIMEOUT_MS, STOP_TIMEOUT_MS, summary } from "./process-shared";

// Through the worker

export interface ShoalNodeChild {
  readonly child: ShoalChild;
  /** http://127.0.0.1:<port>, or undefined for a node without the api service. */
  readonly baseUrl: string | undefined;
  readonly nodeId: string;
}

export async function startShoal(label: string, nodeId: string, env: Record<string, string>, profDir: string | undefined): Promise<ShoalNodeChild> {
  const child = new ShoalChild(
    label,
    {
      BENCH_ROLE: "shoal",
      NODE_ID: nodeId,
      LOG_LEVEL: "warn",
      RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000000",
      RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000",
      RATE_UPLOADS_PER_USER_PER_HOUR: "100000",
      ...env,
    },
    {
      startTimeoutMs: START_TIMEOUT_MS,
      stopTimeoutMs: STOP_TIMEOUT_MS,
      nodeFlags: profDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${path.join(profDir, label)}`],
    },
  );
  const ready = await child.ready;
  return { child, baseUrl: ready.port === 0 ? undefined : `http://127.0.0.1:${ready.port}`, nodeId };
}

/** A fresh benchmark account. */
export function register(baseUrl: string, username: string): Promise<{ token: string; userId: string }> {
  return registerAccount(baseUrl, username, `bench-${randomBytes(12).toString("hex")}`);
}

/** The variants as recorded (signed URLs left out: they change on every run). */
export function variantsOf(media: MediaJson): unknown {
  return {
    placeholder: typeof media.placeholder === "string" && media.placeholder !== "",
    variants: media.variants.map(({ name, mime, width, height, bytes }) => ({ name, mime, width, height, bytes })),
  };
}

/** Waits for `media:ready` / `media:failed` of the user's items over socket.io. */
export class ReadyWatcher {
  private readonly settled = new Map<string, { at: number; failed?: string }>();
  private readonly waiters = new Map<string, (at: number) => void>();
  private readonly failers = new Map<string, (error: Error) => void>();
  /** When the worker said it started the job (`processing`, first time) and finished the processor (`storing`). */
  readonly stages = new Map<string, { processing?: number; storing?: number }>();

  private constructor(private readonly socket: Socket) {
    socket.on("media:progress", (payload: { mediaId: string; stage: string }) => {
      const at = performance.now();
      const entry = this.stages.get(payload.mediaId) ?? {};
      if (payload.stage === "processing" && entry.processing === undefined) entry.processing = at;
      if (payload.stage === "storing") entry.storing = at;
      this.stages.set(payload.mediaId, entry);
    });
    socket.on("media:ready", (payload: { media: { id: string } }) => this.settle(payload.media.id, performance.now()));
    socket.on("media:failed", (payload: { mediaId: string; reason: string }) => this.settle(payload.mediaId, performance.now(), payload.reason));
  }

  static async connect(baseUrl: string, token: string): Promise<ReadyWatcher> {
    const socket = io(baseUrl, { auth: { token }, transports: ["websocket"], reconnection: false });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("connect_error", (error: Error) => reject(new Error(`socket.io: ${error.message}`)));
    });
    return new ReadyWatcher(socket);
  }

  wait(id: string): Promise<number> {
    const done = this.settled.get(id);
    if (done !== undefined) return done.failed === undefined ? Promise.resolve(done.at) : Promise.reject(new Error(`${id} failed: ${done.failed}`));
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} not ready within ${JOB_TIMEOUT_MS / 1000} s`)), JOB_TIMEOUT_MS);
      this.waiters.set(id, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
      this.failers.set(id, (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  close(): void {
    this.socket.close();
  }

  private settle(id: string, at: number, failed?: string): void {
    this.settled.set(id, { at, ...(failed === undefined ? {} : { failed }) });
    if (failed === undefined) this.waiters.get(id)?.(at);
    else this.failers.get(id)?.(new Error(`${id} failed: ${failed}`));
  }
}

export async function upload(baseUrl: string, token: string, file: string, mime: string): Promise<{ id: string; acceptedAt: number; seconds: number }> {
  const began = performance.now();
  const form = new FormData();
  form.append("title", path.basename(file));
  form.append("file", new Blob([fs.readFileSync(file)], { type: mime }), path.basename(file));
  const response = await fetch(`${baseUrl}/api/media`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
  const body = (await response.json()) as { media?: { id: string }; duplicate?: boolean };
  const acceptedAt = performance.now();
  if (response.status !== 201 || body.media === undefined) throw new Error(`POST /api/media ${path.basename(file)}: ${response.status} ${JSON.stringify(body)}`);
  return { id: body.media.id, acceptedAt, seconds: (acceptedAt - began) / 1000 };
}

export async function getMedia(baseUrl: string, token: string, id: string): Promise<MediaJson> {
  const response = await fetch(`${baseUrl}/api/media/${id}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await response.json()) as { media: MediaJson };
  if (response.status !== 200) throw new Error(`GET /api/media/${id}: ${response.status} ${JSON.stringify(body)}`);
  return body.media;
}

/** Which worker node finished which job (cluster: from the workers' `benchJob` lines). */
export class JobLog {
  private readonly byMedia = new Map<string, string>();

  listen(node: ShoalNodeChild): void {
    node.child.on("benchJob", (value) => {
      const line = value as JobLine;
      this.byMedia.set(line.mediaId, line.node);
    });
  }

  nodeOf(mediaId: string): string | undefined {
    return this.byMedia.get(mediaId);
  }
}

/** CPU seconds per second of the processes of a round, and of the machine. */
export class CpuWindow {
  private readonly startedAt = performance.now();
  private readonly machineBefore = machineBusySeconds();
  private readonly before: Map<string, number>;

  constructor(private readonly pids: ReadonlyMap<string, number | undefined>) {
    this.before = new Map([...pids].map(([name, pid]) => [name, procCpuSeconds(pid, { endedChildren: true })]));
  }

  finish(): Record<string, number> {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const result: Record<string, number> = {};
    let named = 0;
    for (const [name, pid] of this.pids) {
      const used = procCpuSeconds(pid, { endedChildren: true }) - (this.before.get(name) ?? 0);
      named += used;
      result[name] = round(used / seconds, 2);
    }
    const machine = machineBusySeconds() - this.machineBefore;
    result.machine = round(machine / seconds, 2);
    result.others = round(Math.max(0, machine - named) / seconds, 2);
    return result;
  }
}

export interface WorkerRoundSetup {
  readonly gateway: ShoalNodeChild;
  /** Cluster: the worker processes taking part; each does a warm-up job before the measured ones. */
  readonly workers?: readonly ShoalNodeChild[];
  readonly jobLog?: JobLog;
  /** Processes whose CPU use is recorded (name -> pid). */
  readonly cpu: ReadonlyMap<string, number | undefined>;
}

export type Accepted = { readonly id: string; readonly acceptedAt: number; readonly seconds: number };

/** Checks that GET /api/media/:id says `ready` for every item (after their media:ready). */
export async function expectAllReady(baseUrl: string, token: string, uploads: readonly Accepted[]): Promise<MediaJson[]> {
  const items = await Promise.all(uploads.map((entry) => getMedia(baseUrl, token, entry.id)));
  const notReady = items.filter((item) => item.status !== "ready");
  if (notReady.length > 0) throw new Error(`${notReady.length} items not ready after media:ready: ${notReady.map((item) => item.status).join(", ")}`);
  return items;
}

/** The times of a round on queued jobs: its jobs over the time from `go` until the last was ready. */
export function queuedRoundTimes(jobs: number, go: number, ready: readonly number[]): Pick<RoundFigures, "jobs" | "wallSeconds" | "jobsPerMinute" | "jobSeconds"> {
  const wallSeconds = (Math.max(...ready) - go) / 1000;
  return { jobs, wallSeconds: round(wallSeconds, 2), jobsPerMinute: round((jobs / wallSeconds) * 60, 1), jobSeconds: summary(ready.map((at) => (at - go) / 1000)) };
}

/**
 * Each job's time split by its progress events as the client saw them: from `since` (the round's start, or
 * the item's acceptance) to its first `processing`, from there to `storing`, and from `storing` to ready.
 */
export function stagesOf(watcher: ReadyWatcher, uploads: readonly Accepted[], ready: readonly number[], since: (entry: Accepted) => number) {
  const waited: number[] = [];
  const processing: number[] = [];
  const finishing: number[] = [];
  const starts: number[] = [];
  uploads.forEach((entry, index) => {
    const stages = watcher.stages.get(entry.id);
    if (stages?.processing === undefined || stages.storing === undefined) return;
    starts.push(stages.processing);
    waited.push(Math.max(0, stages.processing - since(entry)) / 1000);
    processing.push((stages.storing - stages.processing) / 1000);
    finishing.push(((ready[index] as number) - stages.storing) / 1000);
  });
  return { waited, processing, finishing, starts };
}

/**
 * One worker round on a fresh account: warm-up files are uploaded and waited for one at a time (one, or in
 * cluster mode until every worker process has done one), then the measured files are uploaded one after
 * another as fast as the gateway takes them, and the round lasts from the first measured upload accepted
 * until the last item is ready.
 */
export async function workerRound(
  scope: string,
  setup: WorkerRoundSetup,
  username: string,
  warmups: readonly string[],
  measured: readonly string[],
  mime: string,
): Promise<{ figures: RoundFigures; sample: MediaJson }> {
  const baseUrl = setup.gateway.baseUrl as string;
  const { token } = await register(baseUrl, username);
  const watcher = await ReadyWatcher.connect(baseUrl, token);
  try {
    const warmed = new Set<string>();
    let warmupJobs = 0;
    for (const file of warmups) {
      const warm = await upload(baseUrl, token, file, mime);
      await watcher.wait(warm.id);
      warmupJobs++;
      if (setup.workers === undefined || setup.jobLog === undefined) break;
      // The worker's line and the gateway's socket.io event race each other; the line is rarely later.
      for (let tries = 0; tries < 50 && setup.jobLog.nodeOf(warm.id) === undefined; tries++) await delay(20);
      const node = setup.jobLog.nodeOf(warm.id);
      if (node !== undefined) warmed.add(node);
      if (setup.workers.every((worker) => warmed.has(worker.nodeId))) break;
    }
    const allWarmed = setup.workers === undefined || setup.workers.every((worker) => warmed.has(worker.nodeId));
    progress(scope, `${warmupJobs} warm-up job(s) ready${allWarmed ? "" : " (warning: not every worker process got one)"}; uploading ${measured.length} jobs`);
    const loadAverage1mBefore = loadAverage1m();
    const cpu = new CpuWindow(setup.cpu);
    const uploads: Array<{ id: string; acceptedAt: number; seconds: number }> = [];
    const readyAt: Array<Promise<number>> = [];
    for (const file of measured) {
      const accepted = await upload(baseUrl, token, file, mime);
      uploads.push(accepted);
      readyAt.push(watcher.wait(accepted.id));
    }
    const ready = await Promise.all(readyAt);
    const cpuSecondsPerSecond = cpu.finish();
    const first = Math.min(...uploads.map((entry) => entry.acceptedAt));
    const wallSeconds = (Math.max(...ready) - first) / 1000;
    const items = await expectAllReady(baseUrl, token, uploads);
    const uploadSeconds = uploads.map((entry) => entry.seconds);
    // Where each job's time went, from the worker's progress events (socket.io, client clock).
    const { waited: queued, processing, finishing } = stagesOf(watcher, uploads, ready, (entry) => entry.acceptedAt);
    const extra: Record<string, unknown> = {
      stagesSeconds: {
        jobsWithAllStages: processing.length,
        queuedAfterAccepted: summary(queued),
        processorRun: summary(processing),
        storingToReady: summary(finishing),
      },
      warmupJobs,
      cpuSecondsPerSecond,
    };
    if (setup.workers !== undefined && setup.jobLog !== undefined) {
      const jobLog = setup.jobLog;
      const workers = setup.workers;
      // worker1, worker2: the round's worker processes in the order they were started.
      const labelOf = (nodeId: string | undefined) => {
        const index = workers.findIndex((worker) => worker.nodeId === nodeId);
        return index < 0 ? undefined : `worker${index + 1}`;
      };
      const jobsPerWorker: Record<string, number> = Object.fromEntries(workers.map((_worker, index) => [`worker${index + 1}`, 0]));
      let unknown = 0;
      for (const entry of uploads) {
        const label = labelOf(jobLog.nodeOf(entry.id));
        if (label === undefined) unknown++;
        else jobsPerWorker[label] = (jobsPerWorker[label] ?? 0) + 1;
      }
      extra.jobsPerWorker = unknown > 0 ? { ...jobsPerWorker, unknown } : jobsPerWorker;
      extra.warmedWorkers = [...warmed].map(labelOf).sort();
    }
    return {
      figures: {
        jobs: measured.length,
        wallSeconds: round(wallSeconds, 2),
        jobsPerMinute: round((measured.length / wallSeconds) * 60, 1),
        jobSeconds: summary(uploads.map((entry, index) => ((ready[index] as number) - entry.acceptedAt) / 1000)),
        loadAverage1mBefore,
        uploadSeconds: { p50: summary(uploadSeconds).p50, max: summary(uploadSeconds).max, total: round(uploadSeconds.reduce((a, b) => a + b, 0), 2) },
        extra,
      },
      sample: items[0] as MediaJson,
    };
  } finally {
    watcher.close();
  }
}

/** Deletes the job messages of these items from the jobs stream, from sequence `fromSeq` on; answers how many. */

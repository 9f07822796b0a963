/** The processing benchmark's progress lines, results file and final table (bench/process.ts). */
import fs from "node:fs";
import path from "node:path";
import type { MediaJson } from "../lib/media/media-view";
import { PROJECT_ROOT, printWrittenTo, round, writeReport } from "./harness/common";
import type { MachineInfo, codeState } from "./harness/common";
import type { RecordedCommand } from "./process-protocol";
import type { Combined, Options, RoundFigures, RoundKey, Summary } from "./process-shared";
import { CLUSTER_WORKER, EMBEDDED_QUEUED_DEADLINE_SECONDS, GATEWAY_SERVICES, GOALS, IMAGE_HEIGHT, IMAGE_WIDTH, JPEG_QUALITY, VIDEO_FIXTURE, combine } from "./process-shared";
import { variantsOf } from "./process-worker";

export interface ReportInput {
  readonly options: Options;
  readonly machine: MachineInfo;
  readonly date: string;
  readonly code: ReturnType<typeof codeState>;
  readonly all: Record<RoundKey, RoundFigures[]>;
  readonly images: { readonly bytes: number };
  readonly sampleImage: MediaJson | undefined;
  readonly sampleVideo: MediaJson | undefined;
  readonly videoCommands: readonly RecordedCommand[] | undefined;
  readonly embeddedLabels: Record<string, string>;
  readonly clusterLabels: Record<string, string>;
}

export function describe(figures: RoundFigures): string {
  const extra = figures.extra ?? {};
  const stages = extra.stagesSeconds as
    | { queuedAfterAccepted?: Summary; startedAfterSubscribe?: Summary; processorRun: Summary; storingToReady: Summary }
    | undefined;
  const waited =
    stages?.queuedAfterAccepted !== undefined
      ? `queued ${stages.queuedAfterAccepted.p50} s`
      : `started after subscribe ${stages?.startedAfterSubscribe?.p50 ?? "?"} s`;
  const split =
    stages === undefined
      ? ""
      : `; p50 ${waited}, processor ${stages.processorRun.p50} s, storing->ready ${stages.storingToReady.p50} s` +
        (figures.uploadSeconds === undefined ? "" : `, upload ${figures.uploadSeconds.p50} s`);
  const perWorker = extra.jobsPerWorker === undefined ? "" : `; jobs per worker ${JSON.stringify(extra.jobsPerWorker)}`;
  const cpu = extra.cpuSecondsPerSecond === undefined ? "" : `; CPU s/s ${JSON.stringify(extra.cpuSecondsPerSecond)}`;
  return `${figures.jobsPerMinute.toFixed(1)} jobs/min (${figures.jobs} jobs in ${figures.wallSeconds} s, per job p50 ${figures.jobSeconds.p50} s${split}${perWorker}${cpu}, load ${figures.loadAverage1mBefore})`;
}

export const ratio = (x: number | undefined, y: number | undefined): number | null =>
  x === undefined || y === undefined || y === 0 ? null : round(x / y, 3);

/** Writes bench/results/process.json and prints the table and the ratios. */
export function reportRun(run: ReportInput): void {
  const { options, machine, date, code, all, images, sampleImage, sampleVideo, videoCommands, embeddedLabels, clusterLabels } = run;
  // --- Report --------------------------------------------------------------------------------
  const combined = Object.fromEntries((Object.keys(all) as RoundKey[]).map((key) => [key, combine(all[key])])) as Record<RoundKey, Combined>;
  const has = (key: RoundKey) => all[key].length > 0;
  const jpm = (key: RoundKey) => (has(key) ? combined[key].jobsPerMinute : undefined);
  const ratios = {
    aOverB: ratio(jpm("a"), jpm("b")),
    cOverD: ratio(jpm("c"), jpm("d")),
    whileUploading: { aOverB: ratio(jpm("au"), jpm("b")), cOverD: ratio(jpm("cu"), jpm("d")) },
    twoWorkersOverOne: { image: ratio(jpm("e2"), jpm("e1")), video: ratio(jpm("f2"), jpm("f1")) },
    twoWorkersOverOneWhileUploading: { image: ratio(jpm("e2u"), jpm("e1u")), video: ratio(jpm("f2u"), jpm("f1u")) },
    twoDirectProcessesOverOne: { image: ratio(jpm("g2"), jpm("g1")) },
  };
  const perRepeat = (x: RoundKey, y: RoundKey) => all[x].map((entry, index) => ratio(entry.jobsPerMinute, all[y][index]?.jobsPerMinute));
  const ratiosPerRepeat = {
    aOverB: perRepeat("a", "b"),
    cOverD: perRepeat("c", "d"),
    whileUploading: { aOverB: perRepeat("au", "b"), cOverD: perRepeat("cu", "d") },
    twoWorkersOverOne: { image: perRepeat("e2", "e1"), video: perRepeat("f2", "f1") },
    twoWorkersOverOneWhileUploading: { image: perRepeat("e2u", "e1u"), video: perRepeat("f2u", "f1u") },
    twoDirectProcessesOverOne: { image: perRepeat("g2", "g1") },
  };
  const goal = (target: number, reached: number | null) => ({ goal: target, reached, met: reached === null ? null : reached >= target });
  const rounds: Record<string, unknown> = {};
  const roundNames: Record<RoundKey, string> = {
    a: "a",
    b: "b",
    c: "c",
    d: "d",
    au: "aWhileUploading",
    cu: "cWhileUploading",
    e1: "imageOneWorkerProcess",
    e2: "imageTwoWorkerProcesses",
    f1: "videoOneWorkerProcess",
    f2: "videoTwoWorkerProcesses",
    e1u: "imageOneWorkerProcessWhileUploading",
    e2u: "imageTwoWorkerProcessesWhileUploading",
    f1u: "videoOneWorkerProcessWhileUploading",
    f2u: "videoTwoWorkerProcessesWhileUploading",
    g1: "imageOneDirectProcess",
    g2: "imageTwoDirectProcesses",
  };
  const labels: Record<string, string> = { ...embeddedLabels, ...clusterLabels };
  for (const key of Object.keys(all) as RoundKey[]) if (has(key)) rounds[roundNames[key]] = { description: labels[key], ...combined[key] };

  const report = {
    benchmark: "process",
    date,
    machine,
    code: code ?? null,
    inputs: {
      image: {
        width: IMAGE_WIDTH,
        height: IMAGE_HEIGHT,
        jpegQuality: JPEG_QUALITY,
        bytes: images.bytes,
        produced: sampleImage === undefined ? null : variantsOf(sampleImage),
      },
      video: {
        fixture: path.relative(PROJECT_ROOT, VIDEO_FIXTURE),
        bytes: fs.statSync(VIDEO_FIXTURE).size,
        produced: sampleVideo === undefined ? null : variantsOf(sampleVideo),
      },
    },
    settings: {
      imageJobsPerRound: options.imageJobs,
      videoJobsPerRound: options.videoJobs,
      repeats: options.repeats,
      warmup:
        "one job before each embedded round and each direct run; in the cluster rounds on queued jobs, one job per worker process run by that process " +
        "before it subscribes (its own item, through its channel handler, not from JetStream); in the cluster rounds while uploading, warm-up jobs one at a time until every worker process has done one",
      embedded: options.embedded
        ? {
            node: "one process: gateway and worker (SQLite, memory cache, local disk)",
            queuedRounds:
              `(a)/(c): a node of its own per round, started with its channel subscription held back; the files uploaded (the in-process channel drops ` +
              `their job messages, the items stay 'uploaded'); the node subscribes and runs one warm-up job; once the items are older than its ` +
              `JOB_DEADLINE_SECONDS (${EMBEDDED_QUEUED_DEADLINE_SECONDS}), a reconciler round on the node publishes them again; timed from that round's start until the last media:ready`,
            uploadingRounds: "(au)/(cu), the previous measurement: one node for all of them, the worker running while the measured files are uploaded; timed from the first upload accepted",
            workerConcurrency: options.concurrency,
            ffmpegThreads: options.ffmpegThreads,
            sharpThreadsPerImage: 1,
            directConcurrency: options.concurrency,
            directImage: "processImage() (lib/processing/images.ts) with the worker's options",
            directVideoCommands: videoCommands ?? null,
          }
        : null,
      cluster: options.cluster
        ? {
            services: "MariaDB primary (no replica), Redis, NATS with JetStream, s3rver; one child process (bench/harness/services.ts)",
            gateway: { SERVICES: GATEWAY_SERVICES },
            workers: { SERVICES: "processing", ...CLUSTER_WORKER, sharpThreadsPerImage: 1 },
            workerProcesses: "1 in (e1)/(f1)/(e1u)/(f1u); 2 in (e2)/(f2)/(e2u)/(f2u); started for each round and stopped after it",
            queuedRounds:
              "(e1)/(e2)/(f1)/(f2): every job uploaded while no worker process runs (its message waits in JetStream); then the worker process(es) " +
              "start, each runs one warm-up job, and all are told to subscribe at once; timed from that moment until the last measured media:ready",
            uploadingRounds: options.clusterUploading
              ? "(e1u)/(e2u)/(f1u)/(f2u), the previous measurement: worker process(es) running and warmed up; the measured files uploaded one after another; " +
                "timed from the first upload accepted until the last media:ready (the gateway and s3rver take uploads while the workers work)"
              : null,
            video: options.clusterVideo,
            ceilingRounds: options.clusterCeiling
              ? "(g1)/(g2), before the cluster's services start: processImage() in 1 direct process against 2 (bench/process-direct.ts, one image " +
                "at a time each, one libvips thread), the measured files split between the processes, all started on one line after their warm-up"
              : null,
          }
        : null,
    },
    rounds,
    ratios,
    ratiosPerRepeat,
    goals: {
      aOverB: goal(GOALS.aOverB, ratios.aOverB),
      cOverD: goal(GOALS.cOverD, ratios.cOverD),
      twoWorkerProcessesOverOne: {
        ...goal(GOALS.twoOverOne, ratios.twoWorkersOverOne.image),
        measured:
          "image jobs per minute, cluster mode, 2 worker processes vs 1 (each WORKER_CONCURRENCY=1, one thread per job), on jobs queued before " +
          "the workers start: from the workers subscribing until the last item is ready",
        video: ratios.twoWorkersOverOne.video,
        whileUploading: ratios.twoWorkersOverOneWhileUploading,
        machineCeiling: ratios.twoDirectProcessesOverOne.image,
      },
    },
  };
  writeReport(options.output, report);

  console.log("");
  console.log(`Processing benchmark, ${date}: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}`);
  const rows: Array<[RoundKey, string]> = [
    ["a", `(a) image, embedded worker, ${options.concurrency} slots, queued`],
    ["b", "(b) image direct (processImage)"],
    ["c", `(c) video, embedded worker, ${options.concurrency} slots, queued`],
    ["d", "(d) video direct (same ffmpeg args)"],
    ["au", "(au) image, embedded, while uploading"],
    ["cu", "(cu) video, embedded, while uploading"],
    ["e1", "(e1) image, cluster, 1 worker process"],
    ["e2", "(e2) image, cluster, 2 worker processes"],
    ["f1", "(f1) video, cluster, 1 worker process"],
    ["f2", "(f2) video, cluster, 2 worker processes"],
    ["e1u", "(e1u) image, 1 worker, while uploading"],
    ["e2u", "(e2u) image, 2 workers, while uploading"],
    ["f1u", "(f1u) video, 1 worker, while uploading"],
    ["f2u", "(f2u) video, 2 workers, while uploading"],
    ["g1", "(g1) image direct, 1 process"],
    ["g2", "(g2) image direct, 2 processes"],
  ];
  console.log(`  ${"round".padEnd(42)}${"jobs/min".padStart(10)}   per repeat (load average at its start)`);
  for (const [key, label] of rows) {
    if (!has(key)) continue;
    const value = combined[key];
    const each = value.perRepeat.map((entry) => `${entry.jobsPerMinute.toFixed(1)} (${entry.loadAverage1mBefore.toFixed(1)})`).join(", ");
    console.log(`  ${label.padEnd(42)}${value.jobsPerMinute.toFixed(1).padStart(10)}   ${each}`);
  }
  const show = (name: string, value: number | null, target?: number) =>
    value === null ? undefined : `  ${name} = ${value.toFixed(3)}${target === undefined ? "" : ` (goal ${target}: ${value >= target ? "met" : "not met"})`}`;
  for (const line of [
    show("a/b", ratios.aOverB, GOALS.aOverB),
    show("c/d", ratios.cOverD, GOALS.cOverD),
    show("au/b (while uploading)", ratios.whileUploading.aOverB),
    show("cu/d (while uploading)", ratios.whileUploading.cOverD),
    show("2 worker processes / 1, image", ratios.twoWorkersOverOne.image, GOALS.twoOverOne),
    show("2 worker processes / 1, video", ratios.twoWorkersOverOne.video),
    show("2 worker processes / 1, image, while uploading", ratios.twoWorkersOverOneWhileUploading.image),
    show("2 worker processes / 1, video, while uploading", ratios.twoWorkersOverOneWhileUploading.video),
    show("2 direct processes / 1, image (the machine's own scaling)", ratios.twoDirectProcessesOverOne.image),
  ]) {
    if (line !== undefined) console.log(line);
  }
  printWrittenTo(options.output);
}

/**
 * Upload benchmark: `npm run bench:upload` (see bench/README.md).
 *
 * For each mode (embedded on local disk, then cluster on private MariaDB primary+replica, Redis, NATS and
 * S3), uploads one big stream (default 1 GiB: a real MP4 as the head, pseudo-random padding after it)
 * from this process, through:
 *   (a) tus: POST /api/uploads, then PATCHes of BENCH_UPLOAD_TUS_CHUNK_MIB (default 64) each;
 *   (b) multipart: POST /api/media with the file in the field `file`;
 *   (c) a bare node:http server that pipes the body to a file (and (c') the same with fsync);
 *   (d) cluster mode only: one plain PUT /<bucket>/<key> straight to the S3 server (s3rver), its own ingest
 *       ceiling for one stream on this machine.
 * The Shoal node and the raw server each run in a child process (bench/upload-server.ts); in cluster mode
 * the private services run in another (bench/harness/services.ts). Prints MB/s per path, a/c and b/c (and
 * a/d, b/d and s3rver's CPU in cluster mode), and
 * the Shoal child's RSS growth during (a) and (b): VmRSS from /proc/<pid>/status every 100 ms, and VmHWM
 * after resetting it, against the RSS just before the upload. Writes bench/results/upload.json.
 *
 * Environment: BENCH_UPLOAD_MIB (size per upload, default 1024), BENCH_UPLOAD_CLUSTER_MIB (cluster mode's
 * size, default BENCH_UPLOAD_MIB), BENCH_UPLOAD_TUS_CHUNK_MIB (bytes per PATCH, default 64; 0 = one
 * creation-with-upload POST), BENCH_UPLOAD_ROUNDS (default 3), BENCH_UPLOAD_WARMUP_MIB (a small upload
 * through each path first, unmeasured, default 16), BENCH_MODES (default "embedded,cluster"),
 * BENCH_OUTPUT (default bench/results/upload.json), BENCH_CPU_PROF_DIR (run the Shoal node with --cpu-prof,
 * one subdirectory per mode; CPU.*.<pid>.0.*.cpuprofile is its main thread).
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { deleteDirectoryWhenProcessEnds, removeDirectory } from "../scripts/services/processes";
import { startServicesChild, waitForHealth } from "./harness/children";
import { PROJECT_ROOT, Resources, median, packageVersion, printWrittenTo, progress, registerAccount, round, runMain, startRun, stopOnInterrupt, writeReport } from "./harness/common";
import type { Mode } from "./harness/common";
import { abortAllRequests, deleteMedia, deleteS3Object, uploadMultipart, uploadRaw, uploadS3Put, uploadTus } from "./upload-client";
import type { UploadOutcome } from "./upload-client";
import { UploadContent } from "./upload-content";
import type { ContentStream } from "./upload-content";
import { SAMPLE_INTERVAL_MS } from "./upload-protocol";
import type { FromServer } from "./upload-protocol";
import type { ModeResult, Options, PerTarget, Target, TargetSummary, UploadFigures} from "./upload-shared";
import { BASELINE_MS, CLUSTER_CEILING_NOTE, GOAL, HEAD_FILE, HEALTH_OK_TIMEOUT_MS, MiB, PASSWORD, START_TIMEOUT_MS, STOP_TIMEOUT_MS, TARGETS, labelsFor, readOptions, signedMB } from "./upload-shared";
import type { ServerChild} from "./upload-measure";
import { describeUpload, filesUnder, measuredUpload, onUnexpectedExit, startServer } from "./upload-measure";

// ---------------------------------------------------------------------------------------------
// One mode

async function runMode(mode: Mode, options: Options, content: UploadContent, resources: Resources): Promise<ModeResult> {
  const size = options.sizeMiB[mode] * MiB;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `shoal-bench-upload-${mode}-`));
  // Also if this process is killed outright: the watchdog of scripts/services deletes it then.
  deleteDirectoryWhenProcessEnds(root);
  resources.add(`temporary directory ${root}`, () => removeDirectory(root));
  const dataDir = path.join(root, "data");
  const rawDir = path.join(root, "raw");
  // The children's own temporary files (tus's S3 store keeps each part in a file there until it is sent).
  const childTmp = path.join(root, "tmp");
  for (const dir of [dataDir, rawDir, childTmp]) fs.mkdirSync(dir);

  let modeEnv: Record<string, string> = { SHOAL_MODE: "embedded" };
  let s3rver: ServerChild | undefined;
  let s3: { endpoint: string; bucket: string } | undefined;
  let watchedDirs = [path.join(dataDir, "uploads"), path.join(dataDir, "objects"), rawDir, childTmp];
  if (mode === "cluster") {
    progress(mode, "starting private MariaDB primary + 1 replica, Redis, NATS, S3 (s3rver) in a child process");
    const services = startServicesChild<FromServer>({
      replicas: 1,
      watchWindow: true,
      startTimeoutMs: START_TIMEOUT_MS,
      stopTimeoutMs: STOP_TIMEOUT_MS,
      onUnexpectedExit,
    });
    s3rver = services.child;
    resources.add("private services", () => services.child.stop());
    const ready = await services.ready;
    modeEnv = ready.env;
    watchedDirs = [ready.s3Dir, rawDir, childTmp];
    const { S3_ENDPOINT: endpoint, S3_BUCKET: bucket } = ready.env;
    if (endpoint === undefined || bucket === undefined) throw new Error("the private services sent no S3_ENDPOINT or S3_BUCKET");
    s3 = { endpoint, bucket };
  }
  const targets = TARGETS[mode];

  progress(mode, "starting the Shoal node");
  const profFlags = options.cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${path.join(options.cpuProfDir, mode)}`];
  const shoalEnv = {
    ...modeEnv,
    BENCH_ROLE: "shoal",
    NODE_ID: `bench-upload-${mode}`,
    // No processing service: transcoding one upload would compete with the next one for the CPU.
    SERVICES: "api,users,media,site",
    SHOAL_DATA_DIR: dataDir,
    TMPDIR: childTmp,
    LOG_LEVEL: "warn",
    // Generous limits: this measures the upload path, not the refusals.
    USER_QUOTA_BYTES: String(Math.max(64 * 1024 * MiB, 4 * size)),
    UPLOAD_MAX_VIDEO_BYTES: String(Math.max(2 * 1024 * MiB, 2 * size)),
    RATE_UPLOADS_PER_USER_PER_HOUR: "1000000",
    RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000000",
    RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000",
  };
  const shoal = await startServer(resources, `${mode} Shoal node`, shoalEnv, profFlags);
  const health = await waitForHealth(mode, "the node", shoal.baseUrl, START_TIMEOUT_MS, HEALTH_OK_TIMEOUT_MS);
  progress(mode, "starting (c): raw node:http server writing to disk");
  const raw = await startServer(resources, `${mode} raw server`, { BENCH_ROLE: "raw", BENCH_RAW_DIR: rawDir, TMPDIR: childTmp });

  const { token } = await registerAccount(shoal.baseUrl, `bench${mode}${Date.now().toString(36)}`, PASSWORD);
  const agents = new Set<http.Agent>();
  resources.add("HTTP agents", async () => {
    for (const agent of agents) agent.destroy();
  });
  const newAgent = () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.add(agent);
    return agent;
  };
  const tusChunk = options.tusChunkMiB * MiB;
  let s3Objects = 0;
  const run: Record<Target, (stream: ContentStream) => Promise<UploadOutcome>> = {
    a: (stream) => uploadTus(shoal.baseUrl, token, stream, tusChunk, newAgent()),
    b: (stream) => uploadMultipart(shoal.baseUrl, token, stream, newAgent()),
    c: (stream) => uploadRaw(raw.baseUrl, stream, false, newAgent()),
    cFsync: (stream) => uploadRaw(raw.baseUrl, stream, true, newAgent()),
    d: (stream) => {
      if (s3 === undefined) throw new Error("(d) needs the S3 server of cluster mode");
      return uploadS3Put(s3.endpoint, s3.bucket, `bench-upload/ceiling-${++s3Objects}.bin`, stream, newAgent());
    },
  };
  const serverOf = (target: Target): ServerChild => {
    if (target === "a" || target === "b") return shoal.child;
    if (target === "c" || target === "cFsync") return raw.child;
    if (s3rver === undefined) throw new Error("(d) needs the services child of cluster mode");
    return s3rver;
  };
  const cleanUp = async (outcome: UploadOutcome) => {
    if (outcome.mediaId !== undefined) await deleteMedia(shoal.baseUrl, token, outcome.mediaId);
    if (outcome.file !== undefined) await fs.promises.rm(outcome.file, { force: true });
    if (outcome.s3Object !== undefined) await deleteS3Object(outcome.s3Object);
  };
  const labels = labelsFor(options);

  // Unmeasured: loads the upload code paths, and checks the bytes arrive intact.
  const warmup: Partial<Record<Target, { mbPerSecond: number; sha256Verified?: boolean; md5Verified?: boolean }>> = {};
  let seed = mode === "embedded" ? 1 : 100_001;
  for (const target of targets) {
    const stream = content.of(options.warmupMiB * MiB, seed++);
    const { outcome, figures } = await measuredUpload({ server: serverOf(target), s3rver }, stream.size, () => run[target](stream));
    const sha256Verified = outcome.sha256 === undefined ? undefined : outcome.sha256 === stream.sha256();
    if (sha256Verified === false) throw new Error(`${labels[target]}: the stored bytes' SHA-256 differs from what was sent`);
    const md5Verified = outcome.etag === undefined ? undefined : outcome.etag === stream.md5();
    if (md5Verified === false) throw new Error(`${labels[target]}: the stored object's ETag is not the MD5 of what was sent`);
    warmup[target] = {
      mbPerSecond: figures.mbPerSecond,
      ...(sha256Verified === undefined ? {} : { sha256Verified }),
      ...(md5Verified === undefined ? {} : { md5Verified }),
    };
    await cleanUp(outcome);
  }
  progress(mode, `warm-up uploads of ${options.warmupMiB} MiB done, stored bytes verified (SHA-256${s3 === undefined ? "" : "; ETag = MD5 for (d)"})`);

  const rounds: Array<PerTarget<UploadFigures>> = [];
  const toVerify: Array<{ figures: UploadFigures; stream: ContentStream }> = [];
  const leftoversAfterRounds: Array<{ files: number; bytes: number; examples: string[] }> = [];
  for (let index = 0; index < options.rounds; index++) {
    const roundFigures: Partial<Record<Target, UploadFigures>> = {};
    // Each round starts with the next path, so that none always follows the same one.
    const order = [...targets.slice(index % targets.length), ...targets.slice(0, index % targets.length)];
    for (const target of order) {
      const stream = content.of(size, seed++);
      progress(mode, `round ${index + 1}/${options.rounds}: ${labels[target]}, ${options.sizeMiB[mode]} MiB`);
      const { outcome, figures } = await measuredUpload({ server: serverOf(target), s3rver }, size, () => run[target](stream));
      progress(mode, `  ${describeUpload(figures)}`);
      roundFigures[target] = figures;
      if (outcome.sha256 !== undefined || outcome.etag !== undefined) toVerify.push({ figures, stream });
      await cleanUp(outcome);
    }
    rounds.push(Object.fromEntries(targets.map((target) => [target, roundFigures[target]])) as PerTarget<UploadFigures>);
    const leftovers = filesUnder(watchedDirs);
    leftoversAfterRounds.push(leftovers);
    if (leftovers.files > 0) progress(mode, `(!) after deleting the uploads again, ${leftovers.files} files (${leftovers.bytes} bytes) are left, e.g. ${leftovers.examples.join(", ")}`);
  }

  progress(
    mode,
    `checking the SHA-256 Shoal computed${s3 === undefined ? "" : " (and s3rver's ETag for (d))"} for the ${toVerify.length} measured uploads against the bytes sent`,
  );
  const verified = toVerify.map(({ figures, stream }) => {
    const checks = figures.checks as { sha256?: string; sha256Verified?: boolean; etag?: string; md5Verified?: boolean };
    if (checks.sha256 !== undefined) checks.sha256Verified = checks.sha256 === stream.sha256();
    if (checks.etag !== undefined) checks.md5Verified = checks.etag === stream.md5();
    return checks.sha256Verified !== false && checks.md5Verified !== false;
  });
  if (verified.includes(false)) progress(mode, "(!) a stored upload's SHA-256 (or ETag) differs from the bytes sent");

  await raw.child.stop();
  await shoal.child.stop();

  const summaryOf = (target: Target): TargetSummary => {
    const all = rounds.flatMap((figures) => figures[target] ?? []);
    const s3rverCpu = all.flatMap((figures) => figures.cpuSecondsPerSecond.s3rver ?? []);
    return {
      mbPerSecond: round(median(all.map((figures) => figures.mbPerSecond)), 1),
      rssGrowthMB: Math.max(...all.map((figures) => figures.serverRss.growthMB)),
      finalTailSeconds: round(median(all.map((figures) => figures.finalTailSeconds)), 3),
      ...(s3rverCpu.length === 0 ? {} : { s3rverCpuSecondsPerSecond: round(median(s3rverCpu), 2) }),
    };
  };
  const summary = Object.fromEntries(targets.map((target) => [target, summaryOf(target)])) as PerTarget<TargetSummary>;
  const ceiling = summary.d;
  const ratios = {
    aOverC: round(summary.a.mbPerSecond / summary.c.mbPerSecond, 3),
    bOverC: round(summary.b.mbPerSecond / summary.c.mbPerSecond, 3),
    cFsyncOverC: round(summary.cFsync.mbPerSecond / summary.c.mbPerSecond, 3),
    ...(ceiling === undefined
      ? {}
      : { aOverD: round(summary.a.mbPerSecond / ceiling.mbPerSecond, 3), bOverD: round(summary.b.mbPerSecond / ceiling.mbPerSecond, 3) }),
  };
  const rssGrowthMB = { a: summary.a.rssGrowthMB, b: summary.b.rssGrowthMB };
  const storage = mode === "cluster" ? "S3 (s3rver)" : "local disk";
  return {
    sizeMiB: options.sizeMiB[mode],
    description: {
      a:
        (options.tusChunkMiB === 0
          ? "tus: one POST /api/uploads carrying the whole content (creation-with-upload)"
          : `tus: POST /api/uploads, then PATCHes of ${options.tusChunkMiB} MiB`) + `; Shoal stores to ${storage}`,
      b: `multipart/form-data POST /api/media, field "file" after a "title" field; Shoal stores to ${storage}`,
      c: "bare node:http server piping the body to a file on local disk (no fsync)",
      cFsync: "the same raw server, fsync before closing the file (as Shoal's local storage does)",
      ...(s3 === undefined
        ? {}
        : {
            d:
              "the same content sent straight to the S3 server (s3rver) as one unsigned PUT /<bucket>/<key> with Content-Length, " +
              "then HEAD for the stored size and ETag (= MD5 of the bytes), then DELETE; the server watched is the services child that runs s3rver",
          }),
    },
    rounds,
    summary,
    ratios,
    goal: {
      aOverC: ratios.aOverC,
      rssGrowthMB,
      met: ratios.aOverC >= GOAL.aOverC && rssGrowthMB.a <= GOAL.rssGrowthMB && rssGrowthMB.b <= GOAL.rssGrowthMB,
    },
    checks: { health, warmup: warmup as PerTarget<{ mbPerSecond: number; sha256Verified?: boolean; md5Verified?: boolean }>, leftoversAfterRounds },
  };
}

// ---------------------------------------------------------------------------------------------
// Report

function table(mode: Mode, result: ModeResult, labels: Record<Target, string>): string {
  const cluster = mode === "cluster";
  const lines = [
    `${`${mode}, ${result.sizeMiB} MiB per upload`.padEnd(38)}${"MB/s".padStart(8)}${"s".padStart(8)}${"tail s".padStart(8)}${"RSS +MB".padStart(9)}${"srv CPU".padStart(9)}` +
      (cluster ? "s3rver CPU".padStart(12) : ""),
  ];
  for (const target of TARGETS[mode]) {
    const all = result.rounds.flatMap((figures) => figures[target] ?? []);
    const summary = result.summary[target];
    if (summary === undefined || all.length === 0) continue;
    const seconds = median(all.map((figures) => figures.seconds));
    const cpu = median(all.map((figures) => figures.cpuSecondsPerSecond.server));
    lines.push(
      `  ${labels[target].padEnd(36)}${summary.mbPerSecond.toFixed(1).padStart(8)}${seconds.toFixed(2).padStart(8)}` +
        `${summary.finalTailSeconds.toFixed(2).padStart(8)}${summary.rssGrowthMB.toFixed(1).padStart(9)}${cpu.toFixed(2).padStart(9)}` +
        (cluster ? (summary.s3rverCpuSecondsPerSecond?.toFixed(2) ?? "").padStart(12) : ""),
    );
  }
  const { aOverD, bOverD } = result.ratios;
  lines.push(
    `  a/c = ${result.ratios.aOverC.toFixed(3)}   b/c = ${result.ratios.bOverC.toFixed(3)}   (c')/c = ${result.ratios.cFsyncOverC.toFixed(3)}` +
      (aOverD === undefined || bOverD === undefined ? "" : `   a/d = ${aOverD.toFixed(3)}   b/d = ${bOverD.toFixed(3)}  ((d): s3rver's own ceiling)`),
  );
  lines.push(
    `  goal a/c >= ${GOAL.aOverC} and RSS growth <= ${GOAL.rssGrowthMB} MB in (a) and (b): a/c ${result.goal.aOverC.toFixed(3)}, ` +
      `RSS ${signedMB(result.goal.rssGrowthMB.a)} / ${signedMB(result.goal.rssGrowthMB.b)} MB -> ${result.goal.met ? "met" : "not met"}`,
  );
  return lines.join("\n");
}

async function main(): Promise<void> {
  const options = readOptions();
  const resources = new Resources();
  stopOnInterrupt("stopping the uploads, servers and private services", () => {
    abortAllRequests();
    return resources.releaseAll();
  });

  const { machine, date, code } = startRun(
    `modes ${options.modes.map((mode) => `${mode} (${options.sizeMiB[mode]} MiB)`).join(", ")}; ${options.rounds} round(s); ` +
      `tus ${options.tusChunkMiB === 0 ? "creation-with-upload" : `${options.tusChunkMiB} MiB per PATCH`}`,
  );
  const content = new UploadContent(fs.readFileSync(HEAD_FILE));

  const modes: Partial<Record<Mode, ModeResult>> = {};
  for (const mode of options.modes) {
    try {
      modes[mode] = await runMode(mode, options, content, resources);
    } finally {
      await resources.releaseAll();
    }
  }

  const labels = labelsFor(options);
  const smaller = options.modes.filter((mode) => options.sizeMiB[mode] !== 1024);
  const report = {
    benchmark: "upload",
    date,
    machine,
    code: code ?? null,
    units: { "MB": "10^6 bytes", "MB/s": "content bytes / 10^6 / seconds from the first request's start to the last answer" },
    settings: {
      sizeMiB: Object.fromEntries(options.modes.map((mode) => [mode, options.sizeMiB[mode]])),
      ...(smaller.length > 0 ? { note: `${smaller.join(" and ")} ran with less than the goal's 1 GiB (BENCH_UPLOAD_MIB / BENCH_UPLOAD_CLUSTER_MIB)` } : {}),
      tusChunkMiB: options.tusChunkMiB,
      rounds: options.rounds,
      warmupMiB: options.warmupMiB,
      content: `${path.relative(PROJECT_ROOT, HEAD_FILE)} as the head, then pseudo-random padding (1 MiB blocks cut from a 16 MiB random pool)`,
      client: "node:http in the parent process, one connection per path (keep-alive), body streamed with backpressure",
      sampling: `server child's VmRSS from /proc every ${SAMPLE_INTERVAL_MS} ms, VmHWM reset before each upload; baseline: median over the ${BASELINE_MS} ms idle before it`,
      tusServer: `@tus/server ${packageVersion("@tus/server")}, @tus/file-store ${packageVersion("@tus/file-store")}, @tus/s3-store ${packageVersion("@tus/s3-store")}`,
      shoalNode:
        "one child process, SERVICES=api,users,media,site (no processing: transcoding an upload would compete with the next), " +
        "quota, video size limit and rate limits raised; uploads deleted again (DELETE /api/media/:id) after each measurement, `sync` before the next",
      cluster:
        `MariaDB primary + 1 replica, Redis, NATS and s3rver ${packageVersion("s3rver")} in a child process of their own; ` +
        "ListParts, AbortMultipartUpload and ListMultipartUploads, which s3rver lacks and @tus/s3-store needs, answered from s3rver's files " +
        "by the launcher (scripts/services/s3.ts)",
    },
    goal: {
      statement: `a/c >= ${GOAL.aOverC} and the gateway's peak RSS growth <= ${GOAL.rssGrowthMB} MB during (a) and (b), in both modes`,
      reached: Object.fromEntries(Object.entries(modes).map(([mode, result]) => [mode, result.goal])),
      met: Object.values(modes).every((result) => result.goal.met),
    },
    ...(modes.cluster === undefined ? {} : { notes: [CLUSTER_CEILING_NOTE] }),
    modes,
  };
  writeReport(options.output, report);

  console.log("");
  console.log(`Upload benchmark, ${date}: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; MB = 10^6 bytes`);
  for (const mode of options.modes) {
    const result = modes[mode];
    if (result !== undefined) console.log(`\n${table(mode, result, labels)}`);
  }
  if (smaller.length > 0) console.log(`\nnote: ${report.settings.note}`);
  printWrittenTo(options.output);
}

runMain(main);

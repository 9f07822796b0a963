/**
 * Backups against a plain dump: `npm run bench:backup` (see bench/README.md).
 *
 * In one run, on loopback: private MariaDB primary + replica and S3 (scripts/services; s3rver in a child
 * process of its own, as a real object store runs apart from its clients); Shoal's three databases migrated
 * and the feed benchmark's 10,000 users and 100,000 items seeded (bench/feed-seed.ts). Then:
 *   RPO:     Shoal's binlog archiver against the primary while media rows are written at a steady rate
 *            (bench/backup-rpo.ts): the age of the newest archived write, sampled;
 *   backup:  of the media database, alternately Shoal's backup (lib/backups takeBackup: the dump from the
 *            replica with its snapshot checksums, gzip, AES-256-GCM, upload to S3) and a plain
 *            `mariadb-dump <the same options> | gzip > file` from the same server, BENCH_ROUNDS times each;
 *            in each round also the same dump cut after each of Shoal's stages (dump, +gzip, +encrypt), the
 *            plain dump to /dev/null, Shoal's snapshot checksums alone and Shoal's backup to a local directory
 *            instead of S3, to split where the time goes; membership and site once each;
 *   restore: each database's backup restored through Shoal's restore code (restoreBackup: SHA-256 before,
 *            row counts and checksums after) into a scratch database on the primary, and the plain dump
 *            loaded back with `gunzip | mariadb` for comparison (RTO).
 * Writes bench/results/backup.json.
 *
 * Environment: BENCH_ROUNDS (3), BENCH_RPO_SECONDS (120), BENCH_RPO_WRITES_PER_SECOND (10),
 * BENCH_RPO_SAMPLE_MS (1000), BACKUP_BINLOG_FLUSH_SECONDS (Shoal's setting, default 30), BENCH_OUTPUT.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DATABASE_NAMES, parseSettings } from "../config/settings";
import type { DatabaseName } from "../config/settings";
import { dumpsFromSettings } from "../lib/backups/backup-setup";
import { chooseDumpServer, withAccount } from "../lib/backups/dump-sources";
import { parseBackupKey } from "../lib/backups/encryption";
import { createDatabase } from "../lib/db/open-database";
import { MemoryExpiringStore } from "../lib/expiring-store";
import { LocalStorage } from "../lib/storage/local-storage";
import { S3Storage } from "../lib/storage/s3-storage";
import { UrlSigner } from "../lib/storage/signed-url";
import { MIGRATIONS } from "../migrations";
import { envFor, requireBinaries, startServices } from "../scripts/services";
import type { MariaDbReplicationSet } from "../scripts/services";
import { checksumRound, countingDumps, plainDump, plainRestore, shoalBackup, shoalRestore, stageRound } from "./backup-rounds";
import type { PlainDumpRound, ShoalBackupRound, StageName, Timed } from "./backup-rounds";
import { measureRpo } from "./backup-rpo";
import { seedShoal } from "./feed-seed";
import { Resources, median, numberFromEnv, outputFromEnv, printWrittenTo, progress, round, runMain, startRun, stopOnInterrupt, writeReport } from "./harness/common";

const GOAL = 0.8;
const RPO_GOAL_SECONDS = 60;

const options = {
  rounds: numberFromEnv("BENCH_ROUNDS", 3, { integer: true }),
  rpoSeconds: numberFromEnv("BENCH_RPO_SECONDS", 120),
  rpoWritesPerSecond: numberFromEnv("BENCH_RPO_WRITES_PER_SECOND", 10),
  rpoSampleMs: numberFromEnv("BENCH_RPO_SAMPLE_MS", 1000, { integer: true }),
  output: outputFromEnv("backup"),
};

const MiB = 1024 * 1024;
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

/** The server a dump's `source` (host:port) names: its pid (for its CPU time) and label. */
function serverAt(mariadb: MariaDbReplicationSet, source: string): { pid: number | undefined; role: string } {
  const port = Number(source.split(":").pop());
  if (mariadb.primary.port === port) return { pid: mariadb.primary.pid, role: "primary" };
  const index = mariadb.replicas.findIndex((replica) => replica.port === port);
  return index === -1 ? { pid: undefined, role: source } : { pid: mariadb.replicas[index]?.pid, role: `replica ${index + 1}` };
}

async function migrateAll(settings: ReturnType<typeof parseSettings>): Promise<void> {
  const logger = { info: () => undefined, warn: (message: string) => progress("migrate", message) };
  for (const name of DATABASE_NAMES) {
    const db = createDatabase(name, settings.databases[name], settings.replication, new MemoryExpiringStore(), logger);
    try {
      await db.connect();
      await db.migrate(MIGRATIONS[name]);
    } finally {
      await db.close();
    }
  }
}

async function main(): Promise<void> {
  requireBinaries(["mariadbd", "mariadb-install-db"]);
  for (const tool of ["mariadb-dump", "mariadb-binlog", "mariadb", "gzip", "gunzip", "bash"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      throw new Error(`${tool} not found: apt-get install mariadb-client gzip`);
    }
  }
  const resources = new Resources();
  stopOnInterrupt("stopping the private services", () => resources.releaseAll());
  const { machine, date, code } = startRun(
    `${options.rounds} rounds each of Shoal's backup and a plain dump of the media database; RPO: ${options.rpoWritesPerSecond} writes/s for ${options.rpoSeconds} s`,
    { showLoad: true },
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-bench-backup-"));
  resources.add(`directory ${dir}`, () => fs.promises.rm(dir, { recursive: true, force: true }));
  try {
    progress("backup", "starting private MariaDB primary + 1 replica and S3");
    const services = await startServices({ mariadb: { replicas: 1 }, s3: { ownProcess: true } });
    resources.add("private services", () => services.stop());
    const mariadb = services.mariadb!;
    const objectStorePid = services.s3?.pid;
    const env: Record<string, string> = {
      ...envFor(services),
      MYSQL_ADMIN_USER: mariadb.adminUser,
      MYSQL_ADMIN_PASSWORD: mariadb.adminPassword,
      SHOAL_DATA_DIR: path.join(dir, "data"),
      // Cluster settings require them; nothing here connects to either (no node runs).
      NATS_URL: "nats://127.0.0.1:4222",
      REDIS_URL: "redis://127.0.0.1:6379",
      ...(process.env.BACKUP_BINLOG_FLUSH_SECONDS !== undefined ? { BACKUP_BINLOG_FLUSH_SECONDS: process.env.BACKUP_BINLOG_FLUSH_SECONDS } : {}),
    };
    const settings = parseSettings(env);
    if (settings.storage.kind !== "s3") throw new Error("the benchmark's settings must be cluster mode with S3");
    const key = parseBackupKey(env.BACKUP_ENCRYPTION_KEY ?? "");
    const s3 = new S3Storage(settings.storage);
    resources.add("S3 client", () => s3.close());
    const local = new LocalStorage(path.join(dir, "local-backups"), new UrlSigner(env.SHOAL_SECRET ?? ""));
    const account = { user: mariadb.adminUser, password: mariadb.adminPassword };
    const adminPrimaryUrl = withAccount(mariadb.primaryUrl, account);

    progress("backup", "migrating the three databases; seeding 10,000 users and 100,000 items");
    await migrateAll(settings);
    const seeded = await seedShoal(mariadb);
    await mariadb.waitForReplicaCatchUp(0, 300_000);
    progress("backup", `seeded ${JSON.stringify(seeded)}; the replica has caught up`);

    const rpo = await measureRpo({
      adminUrl: adminPrimaryUrl,
      appUrl: mariadb.primaryUrl,
      storage: s3,
      key,
      directory: path.join(dir, "binlog"),
      flushSeconds: settings.backups.binlogFlushSeconds,
      writesPerSecond: options.rpoWritesPerSecond,
      seconds: options.rpoSeconds,
      sampleMs: options.rpoSampleMs,
    });
    progress("rpo", `RPO max ${rpo.rpoSeconds.max} s, p50 ${rpo.rpoSeconds.p50} s over ${rpo.rpoSeconds.samples} samples (${rpo.writes.count} writes, ${rpo.writes.perSecondReached}/s)`);
    await mariadb.waitForReplicaCatchUp(0, 300_000);

    // The server Shoal's dumps come from (the caught-up replica); the plain dump reads the same one.
    const dumpUrl = await chooseDumpServer(adminPrimaryUrl, mariadb.replicaUrls.map((url) => withAccount(url, account)), settings.replication.maxLagSeconds);
    const dumpServer = serverAt(mariadb, new URL(dumpUrl).host);
    const dumps = countingDumps(dumpsFromSettings(settings));
    const plainFile = (name: string, n: number) => path.join(dir, `${name}-${n}.sql.gz`);

    const shoalRounds: ShoalBackupRound[] = [];
    const plainRounds: PlainDumpRound[] = [];
    const stageRuns: Record<StageName | "plainDumpToDevNull" | "checksumsAlone" | "shoalToLocalDirectory", Timed[]> = {
      plainDumpToDevNull: [],
      checksumsAlone: [],
      dump: [],
      "dump+gzip": [],
      "dump+gzip+encrypt": [],
      shoalToLocalDirectory: [],
    };
    let serverVersion = "";
    for (let n = 1; n <= options.rounds; n += 1) {
      const shoal = await shoalBackup("media", dumps, s3, key, dumpServer.pid, objectStorePid);
      serverVersion = shoal.manifest.serverVersion;
      if (serverAt(mariadb, shoal.source).role !== dumpServer.role) throw new Error(`Shoal's dump came from ${shoal.source}, not from the ${dumpServer.role}`);
      shoalRounds.push(shoal);
      progress("media", `round ${n}: Shoal ${shoal.seconds} s, ${mib(shoal.storedBytes)} stored (${mib(shoal.sqlBytes)} SQL), load ${shoal.load.loadAverage[0]}`);
      const plain = await plainDump(dumpUrl, "shoal_media", serverVersion, plainFile("media", n), dumpServer.pid);
      plainRounds.push(plain);
      progress("media", `round ${n}: plain ${plain.seconds} s, ${mib(plain.fileBytes)}, load ${plain.load.loadAverage[0]}`);
      // Where the time goes: the same dump cut after each stage, its parts alone, and to a local directory instead of S3.
      stageRuns.plainDumpToDevNull.push(await plainDump(dumpUrl, "shoal_media", serverVersion, "", dumpServer.pid, "none"));
      stageRuns.checksumsAlone.push(await checksumRound(dumpUrl, "shoal_media", dumpServer.pid));
      for (const stage of ["dump", "dump+gzip", "dump+gzip+encrypt"] as const) {
        stageRuns[stage].push(await stageRound(stage, "media", dumpsFromSettings(settings), key, dumpServer.pid));
      }
      const { manifest: _local, ...toLocal } = await shoalBackup("media", dumps, local, key, dumpServer.pid);
      stageRuns.shoalToLocalDirectory.push(toLocal);
      progress("media", `round ${n} split (s): ${Object.entries(stageRuns).map(([name, runs]) => `${name} ${runs[runs.length - 1]?.seconds}`).join(", ")}`);
    }

    const others: Record<string, { shoal: Omit<ShoalBackupRound, "manifest">; plain: PlainDumpRound }> = {};
    const manifests = { media: shoalRounds[shoalRounds.length - 1]!.manifest } as Record<DatabaseName, ShoalBackupRound["manifest"]>;
    for (const database of ["membership", "site"] as const) {
      const { manifest, ...shoal } = await shoalBackup(database, dumps, s3, key, dumpServer.pid, objectStorePid);
      manifests[database] = manifest;
      const plain = await plainDump(dumpUrl, `shoal_${database}`, serverVersion, plainFile(database, 1), dumpServer.pid);
      others[database] = { shoal, plain };
      progress(database, `Shoal ${shoal.seconds} s (${mib(shoal.storedBytes)}), plain ${plain.seconds} s (${mib(plain.fileBytes)})`);
    }

    progress("restore", "restoring each database's backup into a scratch database on the primary, with the checks");
    const restores: Record<string, unknown> = {};
    for (const database of DATABASE_NAMES) {
      const restored = await shoalRestore(manifests[database], s3, key, adminPrimaryUrl, `shoal_bench_restore_${database}`, mariadb.primary.pid);
      restores[database] = restored;
      progress("restore", `${database}: ${restored.seconds} s, ${restored.tables} tables checked`);
    }
    const plainMediaRestore = await plainRestore(plainFile("media", options.rounds), adminPrimaryUrl, "shoal_bench_plain_media", serverVersion, mariadb.primary.pid);
    progress("restore", `media, plain gunzip | mariadb: ${plainMediaRestore.seconds} s`);

    const shoalMedian = median(shoalRounds.map((r) => r.seconds));
    const plainMedian = median(plainRounds.map((r) => r.seconds));
    const speedRatio = round(plainMedian / shoalMedian, 3);
    const medianOf = (name: keyof typeof stageRuns): number => round(median(stageRuns[name].map((run) => run.seconds)), 2);
    const split = {
      statement: `median seconds of ${options.rounds} runs each; each stage's share is the difference between Shoal's dump cut after it and cut before it (noisy on a shared machine)`,
      plainDumpToDevNull: medianOf("plainDumpToDevNull"),
      checksumsAlone: medianOf("checksumsAlone"),
      shoalDumpWithSnapshotChecksums: medianOf("dump"),
      gzip: round(medianOf("dump+gzip") - medianOf("dump"), 2),
      encrypt: round(medianOf("dump+gzip+encrypt") - medianOf("dump+gzip"), 2),
      uploadToS3: round(shoalMedian - medianOf("dump+gzip+encrypt"), 2),
      storeToLocalDirectory: round(medianOf("shoalToLocalDirectory") - medianOf("dump+gzip+encrypt"), 2),
    };
    const strip = ({ manifest: _manifest, ...rest }: ShoalBackupRound) => rest;
    const report = {
      benchmark: "backup",
      date,
      machine,
      code: code ?? null,
      setup: {
        services: "MariaDB primary + 1 replica (scripts/services), s3rver in a child process of its own, on loopback; no Shoal node",
        data: seeded,
        dumpServer: `${dumpServer.role} (chosen by Shoal's chooseDumpServer; the plain dump reads the same server)`,
        serverVersion,
        encryption: "AES-256-GCM in 64 KiB authenticated chunks (lib/backups/encryption.ts), after gzip level 6",
        plainDump: plainRounds[0]?.command ?? "",
      },
      goal: {
        statement: `Shoal's backup of the media database at least ${GOAL} of the speed of the plain dump | gzip (median seconds, ${options.rounds} rounds each); RPO at most ${RPO_GOAL_SECONDS} s`,
        speedRatio,
        shoalMedianSeconds: shoalMedian,
        plainMedianSeconds: plainMedian,
        sizeRatio: round(median(shoalRounds.map((r) => r.storedBytes)) / median(plainRounds.map((r) => r.fileBytes)), 3),
        rpoMaxSeconds: rpo.rpoSeconds.max,
        met: { speed: speedRatio >= GOAL, rpo: rpo.rpoSeconds.max <= RPO_GOAL_SECONDS },
      },
      media: { shoal: shoalRounds.map(strip), plain: plainRounds, split, stages: stageRuns },
      others,
      restore: { shoal: restores, plainMedia: plainMediaRestore },
      rpo,
    };
    writeReport(options.output, report);
    printSummary(report);
    printWrittenTo(options.output);
  } finally {
    await resources.releaseAll();
  }
}

function printSummary(report: {
  goal: { speedRatio: number; shoalMedianSeconds: number; plainMedianSeconds: number; sizeRatio: number; met: { speed: boolean; rpo: boolean } };
  media: { shoal: Array<{ seconds: number; storedBytes: number; storedBytesPerSecond: number; sqlBytesPerSecond: number }>; plain: PlainDumpRound[]; split: Record<string, unknown> };
  restore: { shoal: Record<string, unknown>; plainMedia: { seconds: number } };
  rpo: { rpoSeconds: { max: number; p50: number; p90: number } };
}): void {
  const { goal, media } = report;
  console.log("\nmedia database           seconds   stored      bytes/s (stored / SQL)   1-min load");
  for (const r of media.shoal) console.log(`  Shoal (S3, encrypted)  ${String(r.seconds).padStart(7)}   ${mib(r.storedBytes).padStart(9)}   ${mib(r.storedBytesPerSecond)}/s / ${mib(r.sqlBytesPerSecond)}/s`);
  for (const r of media.plain) console.log(`  dump | gzip > file     ${String(r.seconds).padStart(7)}   ${mib(r.fileBytes).padStart(9)}   ${mib(r.fileBytesPerSecond)}/s                ${r.load.loadAverage[0]}`);
  console.log(`speed Shoal/plain ${goal.speedRatio} (${goal.plainMedianSeconds} / ${goal.shoalMedianSeconds} s) ${goal.met.speed ? "met" : "not met"} (goal ${GOAL}); size Shoal/plain ${goal.sizeRatio}`);
  console.log(`split (s): ${JSON.stringify(media.split)}`);
  const restoreSeconds = Object.entries(report.restore.shoal).map(([name, value]) => {
    const { seconds, phases } = value as { seconds: number; phases: Record<string, number> };
    return `${name} ${seconds} s (${Object.entries(phases).map(([phase, spent]) => `${phase} ${spent}`).join(", ")})`;
  });
  console.log(`restore (RTO), Shoal with checks: ${restoreSeconds.join(", ")}; media plain gunzip | mariadb ${report.restore.plainMedia.seconds} s`);
  console.log(`RPO: max ${report.rpo.rpoSeconds.max} s, p50 ${report.rpo.rpoSeconds.p50} s, p90 ${report.rpo.rpoSeconds.p90} s ${report.goal.met.rpo ? "met" : "not met"} (goal ${RPO_GOAL_SECONDS} s)`);
}

runMain(main);

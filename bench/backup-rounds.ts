/**
 * The measured rounds of bench/backup.ts: Shoal's backup of one database (lib/backups takeBackup: dump,
 * gzip, AES-256-GCM, upload), a plain `mariadb-dump | gzip > file` of the same database from the same server,
 * the same dump cut after each of Shoal's stages (to split where the time goes), and restores (RTO).
 * Every round records its wall time, the CPU seconds of this process, of the tools it ran and of the
 * MariaDB server dumped, and the machine's load over it.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { PassThrough, Transform, Writable } from "node:stream";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { sql } from "kysely";
import type { DatabaseName } from "../config/settings";
import { EncryptStream } from "../lib/backups/encryption";
import type { BackupManifest } from "../lib/backups/manifest";
import { clientInvocation, exitOf, openServer } from "../lib/backups/mysql-dump";
import { dropMysqlDatabase, restoreBackup, restoreProblem } from "../lib/backups/restore";
import type { RestoreProgress } from "../lib/backups/restore";
import { summariseMysql } from "../lib/backups/table-checksums";
import { takeBackup } from "../lib/backups/take-backup";
import type { StartDump } from "../lib/backups/take-backup";
import { flavorFromVersion } from "../lib/db/replication-flavor";
import type { ObjectStorage } from "../lib/storage/object-storage";
import { procCpuSeconds, round } from "./harness/common";
import { cpuMark, loadSince } from "./harness/machine";
import type { LoadRecord } from "./harness/machine";

/** CPU seconds spent over a round: this process (gzip's threads included), the tools it ran and waited for, the MariaDB server, and the S3 stand-in's process when the round stored there. */
export interface CpuSplit {
  readonly benchProcess: number;
  readonly tools: number;
  readonly server: number;
  readonly objectStore?: number;
}

export interface Timed {
  readonly seconds: number;
  readonly cpuSeconds: CpuSplit;
  readonly load: LoadRecord;
}

/** Runs `work`, timing it and reading the CPU it took here, in ended children, in the server with pid `serverPid` and in the object store with `objectStorePid`. */
export async function timed<T>(serverPid: number | undefined, work: () => Promise<T>, objectStorePid?: number): Promise<{ value: T } & Timed> {
  const own = () => procCpuSeconds(process.pid);
  const withChildren = () => procCpuSeconds(process.pid, { endedChildren: true });
  const before = {
    own: own(),
    all: withChildren(),
    server: procCpuSeconds(serverPid),
    objectStore: procCpuSeconds(objectStorePid),
    mark: cpuMark(),
    at: process.hrtime.bigint(),
  };
  const value = await work();
  const seconds = Number(process.hrtime.bigint() - before.at) / 1e9;
  const ownSpent = own() - before.own;
  return {
    value,
    seconds: round(seconds, 2),
    cpuSeconds: {
      benchProcess: round(ownSpent, 2),
      tools: round(withChildren() - before.all - ownSpent, 2),
      server: round(procCpuSeconds(serverPid) - before.server, 2),
      ...(objectStorePid === undefined ? {} : { objectStore: round(procCpuSeconds(objectStorePid) - before.objectStore, 2) }),
    },
    load: loadSince(before.mark),
  };
}

/** Counts the bytes passing through. */
class ByteCount extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/** Shoal's dumps, with the SQL text they produce counted (the plaintext size of each backup). */
export function countingDumps(startDump: StartDump): { startDump: StartDump; lastSqlBytes: () => number } {
  let counter = new ByteCount();
  return {
    lastSqlBytes: () => counter.bytes,
    startDump: async (database) => {
      const dump = await startDump(database);
      counter = new ByteCount();
      const counted = counter;
      void pipeline(dump.data, counted).catch((error: unknown) => counted.destroy(error as Error));
      return { ...dump, data: counted };
    },
  };
}

export type ShoalBackupRound = Timed & {
  readonly id: string;
  readonly storedBytes: number;
  readonly sqlBytes: number;
  readonly source: string;
  readonly storedBytesPerSecond: number;
  readonly sqlBytesPerSecond: number;
  readonly manifest: BackupManifest;
};

/** One backup through takeBackup (gzip level 6, encrypted with `key`) into `storage`, served by the process `objectStorePid` when that is not this one. */
export async function shoalBackup(
  database: DatabaseName,
  dumps: ReturnType<typeof countingDumps>,
  storage: ObjectStorage,
  key: Buffer,
  serverPid: number | undefined,
  objectStorePid?: number,
): Promise<ShoalBackupRound> {
  const run = await timed(serverPid, () => takeBackup(database, dumps.startDump, storage, key), objectStorePid);
  const manifest = run.value;
  const sqlBytes = dumps.lastSqlBytes();
  return {
    id: manifest.id,
    storedBytes: manifest.bytes,
    sqlBytes,
    source: manifest.source,
    storedBytesPerSecond: Math.round(manifest.bytes / run.seconds),
    sqlBytesPerSecond: Math.round(sqlBytes / run.seconds),
    seconds: run.seconds,
    cpuSeconds: run.cpuSeconds,
    load: run.load,
    manifest,
  };
}

export type PlainDumpRound = Timed & { readonly fileBytes: number; readonly fileBytesPerSecond: number; readonly command: string };

/** The MariaDB dump program and the options Shoal's dump passes it (the same snapshot options, without Shoal's snapshot lock and checksums). */
export function plainDumpCommand(serverVersion: string): { program: string; options: readonly string[] } {
  const { program, options } = flavorFromVersion(serverVersion).dump;
  return { program, options };
}

const shellQuote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

/** `mariadb-dump <Shoal's options> <database> | gzip > file` (gzip's default level 6, as Shoal's) through sh; the password in the environment. */
export async function plainDump(url: string, database: string, serverVersion: string, file: string, serverPid: number | undefined, sink: "gzip" | "none" = "gzip"): Promise<PlainDumpRound> {
  const { program, options } = plainDumpCommand(serverVersion);
  const { args, env } = clientInvocation(url);
  const dump = [program, ...args, ...options, database].map(shellQuote).join(" ");
  const command = sink === "gzip" ? `set -o pipefail; ${dump} | gzip > ${shellQuote(file)}` : `${dump} > /dev/null`;
  const run = await timed(serverPid, async () => {
    const child = spawn("bash", ["-c", command], { env, stdio: ["ignore", "ignore", "pipe"] });
    await exitOf(child, program);
  });
  const fileBytes = sink === "gzip" ? fs.statSync(file).size : 0;
  const shown = [program, "--host=… --port=… --user=…", ...options, database].join(" ");
  return {
    fileBytes,
    fileBytesPerSecond: sink === "gzip" ? Math.round(fileBytes / run.seconds) : 0,
    command: sink === "gzip" ? `${shown} | gzip > ${path.basename(file)}` : `${shown} > /dev/null`,
    seconds: run.seconds,
    cpuSeconds: run.cpuSeconds,
    load: run.load,
  };
}

export type StageName = "dump" | "dump+gzip" | "dump+gzip+encrypt";

/** Shoal's own dump (its snapshot lock and checksums included) cut after a stage: what follows it is thrown away. */
export async function stageRound(stage: StageName, database: DatabaseName, startDump: StartDump, key: Buffer, serverPid: number | undefined): Promise<Timed & { stage: StageName; bytesOut: number }> {
  const count = new ByteCount();
  const run = await timed(serverPid, async () => {
    const dump = await startDump(database);
    const steps: Array<Readable | Transform | Writable> = [dump.data];
    if (stage !== "dump") steps.push(createGzip({ level: 6 }));
    if (stage === "dump+gzip+encrypt") steps.push(new EncryptStream(key));
    steps.push(count, new Writable({ write: (_chunk, _encoding, callback) => callback() }));
    await pipeline(steps as [Readable, ...Array<Transform | Writable>]);
    await dump.finished;
    await dump.summary;
  });
  return { stage, bytesOut: count.bytes, seconds: run.seconds, cpuSeconds: run.cpuSeconds, load: run.load };
}

/** Shoal's snapshot checksums alone (the row counts and checksums a backup's manifest records), in a consistent snapshot of their own. */
export async function checksumRound(url: string, schema: string, serverPid: number | undefined): Promise<Timed & { tables: number }> {
  const db = openServer(url, schema, 1);
  try {
    const run = await timed(serverPid, () =>
      db.connection().execute(async (connection) => {
        await sql`start transaction with consistent snapshot`.execute(connection);
        try {
          return await summariseMysql(connection, schema);
        } finally {
          await sql`rollback`.execute(connection);
        }
      }),
    );
    return { tables: Object.keys(run.value.tables).length, seconds: run.seconds, cpuSeconds: run.cpuSeconds, load: run.load };
  } finally {
    await db.destroy();
  }
}

export type ShoalRestoreRound = Timed & {
  readonly database: DatabaseName;
  readonly tables: number;
  readonly checked: string;
  /** Seconds in each of restoreBackup's phases: reading the stored file for its SHA-256, loading it, comparing the tables. */
  readonly phases: Record<RestoreProgress["phase"], number>;
};

/** Restores a backup through restoreBackup into a scratch database (its SHA-256 checked before, rows and checksums after), then drops it. */
export async function shoalRestore(manifest: BackupManifest, storage: ObjectStorage, key: Buffer, url: string, scratch: string, serverPid: number | undefined): Promise<ShoalRestoreRound> {
  try {
    const phases: Record<RestoreProgress["phase"], number> = { checking: 0, loading: 0, verifying: 0 };
    let phase: RestoreProgress["phase"] | undefined;
    let phaseStarted = 0;
    const onProgress = (progress: RestoreProgress): void => {
      if (progress.phase === phase) return;
      const now = Date.now();
      if (phase !== undefined) phases[phase] += (now - phaseStarted) / 1000;
      phase = progress.phase;
      phaseStarted = now;
    };
    const run = await timed(serverPid, () => restoreBackup({ storage, key, manifest, target: { kind: "mysql", url, database: scratch }, force: true, onProgress }));
    if (phase !== undefined) phases[phase] += (Date.now() - phaseStarted) / 1000;
    const problem = restoreProblem(run.value, manifest);
    if (problem !== undefined) throw new Error(`the restored ${manifest.database} does not match its manifest: ${problem}`);
    return {
      database: manifest.database,
      tables: run.value.tables,
      checked: `SHA-256 of the stored file; row counts and checksums of ${run.value.tables} tables and the migrations match the manifest`,
      phases: { checking: round(phases.checking, 2), loading: round(phases.loading, 2), verifying: round(phases.verifying, 2) },
      seconds: run.seconds,
      cpuSeconds: run.cpuSeconds,
      load: run.load,
    };
  } finally {
    await dropMysqlDatabase(url, scratch);
  }
}

/** `gunzip -c file | mariadb --database=scratch`: the plain dump loaded back, for comparison with Shoal's restore. */
export async function plainRestore(file: string, url: string, scratch: string, serverVersion: string, serverPid: number | undefined): Promise<Timed & { command: string }> {
  const client = flavorFromVersion(serverVersion).dump.client;
  const { args, env } = clientInvocation(url);
  try {
    const create = spawn(client, [...args, "-e", `CREATE DATABASE \`${scratch}\` CHARACTER SET utf8mb4`], { env, stdio: ["ignore", "ignore", "pipe"] });
    await exitOf(create, client);
    const run = await timed(serverPid, async () => {
      const gunzip = spawn("gunzip", ["-c", file], { stdio: ["ignore", "pipe", "pipe"] });
      const load = spawn(client, [...args, "--binary-mode", `--database=${scratch}`], { env, stdio: ["pipe", "ignore", "pipe"] });
      const through = new PassThrough();
      await Promise.all([pipeline(gunzip.stdout, through, load.stdin), exitOf(gunzip, "gunzip"), exitOf(load, client)]);
    });
    return { command: `gunzip -c ${path.basename(file)} | ${client} --binary-mode --database=…`, seconds: run.seconds, cpuSeconds: run.cpuSeconds, load: run.load };
  } finally {
    await dropMysqlDatabase(url, scratch);
  }
}

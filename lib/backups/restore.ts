import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { sql } from "kysely";
import { flavorFromVersion } from "../db/replication-flavor";
import type { ObjectStorage } from "../storage/object-storage";
import { checkStoredFile, openDecrypted } from "./backup-files";
import { compareTables, describeMismatches } from "./manifest";
import type { BackupManifest, TableMismatch } from "./manifest";
import { clientInvocation, exitOf, openServer } from "./mysql-dump";
import { checksumAlgorithmOf, summariseMysql, summariseSqliteFile } from "./table-checksums";
import type { DatabaseSummary } from "./table-checksums";

export type RestoreTarget = { readonly kind: "mysql"; readonly url: string; readonly database: string } | { readonly kind: "sqlite"; readonly file: string };

export interface RestoreProgress {
  readonly phase: "checking" | "loading" | "verifying";
  /** Stored (encrypted) bytes read in this phase, of `totalBytes`. */
  readonly bytes: number;
  readonly totalBytes: number;
  /** Tables loaded so far (SQL dumps). */
  readonly tables: number;
  readonly table?: string;
}

export interface RestoreOutcome {
  readonly bytes: number;
  readonly tables: number;
  readonly durationMs: number;
  readonly summary: DatabaseSummary;
  readonly mismatches: readonly TableMismatch[];
  readonly migrationsMatch: boolean;
}

/** The target holds data and --force was not given, or the backup cannot go to that kind of target. */
export class RestoreRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RestoreRefusedError";
  }
}

export function describeTarget(target: RestoreTarget): string {
  if (target.kind === "sqlite") return target.file;
  const url = new URL(target.url);
  return `${url.hostname}:${url.port || "3306"}/${target.database}`;
}

async function mysqlTableCount(url: string, database: string): Promise<number> {
  const db = openServer(url, undefined, 1);
  try {
    const { rows } = await sql<{ n: number | string }>`select count(*) as n from information_schema.tables where table_schema = ${database}`.execute(db);
    return Number(rows[0]?.n ?? 0);
  } finally {
    await db.destroy();
  }
}

/** Drops the database if it exists (scratch databases of drills, a target being overwritten with --force). */
export async function dropMysqlDatabase(url: string, database: string): Promise<void> {
  const db = openServer(url, undefined, 1);
  try {
    await sql`drop database if exists ${sql.id(database)}`.execute(db);
  } finally {
    await db.destroy();
  }
}

async function prepareMysqlTarget(url: string, database: string, force: boolean): Promise<string> {
  const tables = await mysqlTableCount(url, database);
  if (tables > 0 && !force) {
    throw new RestoreRefusedError(`${database} already has ${tables} tables; restore into an empty database, or pass --force to replace it`);
  }
  const db = openServer(url, undefined, 1);
  try {
    if (tables > 0) await sql`drop database ${sql.id(database)}`.execute(db);
    await sql`create database if not exists ${sql.id(database)} character set utf8mb4`.execute(db);
    return (await sql<{ version: string }>`select version() as version`.execute(db)).rows[0]?.version ?? "";
  } finally {
    await db.destroy();
  }
}

function prepareSqliteTarget(file: string, force: boolean): void {
  const size = fs.existsSync(file) ? fs.statSync(file).size : 0;
  if (size > 0 && !force) throw new RestoreRefusedError(`${file} already exists; restore into a new file, or pass --force to replace it`);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  for (const companion of [`${file}-wal`, `${file}-shm`, `${file}-journal`]) fs.rmSync(companion, { force: true });
}

/** Notices each table the SQL dump starts to load. */
class TableWatch extends Transform {
  tables = 0;
  private tail = "";

  constructor(private readonly onTable: (table: string, count: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    const text = this.tail + chunk.toString("latin1");
    for (const match of text.matchAll(/^-- Dumping data for table `([^`]+)`$/gm)) this.onTable(match[1] ?? "", ++this.tables);
    const lastNewline = text.lastIndexOf("\n");
    this.tail = lastNewline === -1 ? text.slice(-200) : text.slice(lastNewline + 1).slice(-200);
    callback(null, chunk);
  }
}

/**
 * Restores one backup into a target: checks the stored file's SHA-256 and size first, then decrypts,
 * decompresses and loads it as it is read, then compares every table's row count and checksum, and the
 * migrations, with the manifest. Refuses a target that holds data unless `force`.
 */
export async function restoreBackup(options: {
  storage: ObjectStorage;
  key: Buffer;
  manifest: BackupManifest;
  target: RestoreTarget;
  force: boolean;
  onProgress?: (progress: RestoreProgress) => void;
  now?: () => number;
}): Promise<RestoreOutcome> {
  const { storage, key, manifest, target, force, onProgress } = options;
  const now = options.now ?? Date.now;
  const started = now();
  if ((manifest.engine === "sqlite") !== (target.kind === "sqlite")) {
    throw new RestoreRefusedError(`a ${manifest.engine} backup cannot be restored into a ${target.kind === "sqlite" ? "SQLite file" : "MySQL server"}`);
  }
  const checksumAlgorithm = checksumAlgorithmOf(manifest);
  const serverVersion = target.kind === "mysql" ? await prepareMysqlTarget(target.url, target.database, force) : "";
  if (target.kind === "sqlite") prepareSqliteTarget(target.file, force);

  const totalBytes = manifest.bytes;
  await checkStoredFile(storage, manifest, (bytes) => onProgress?.({ phase: "checking", bytes, totalBytes, tables: 0 }));

  let tables = 0;
  let loadedBytes = 0;
  const onBytes = (bytes: number): void => {
    loadedBytes = bytes;
    onProgress?.({ phase: "loading", bytes, totalBytes, tables });
  };
  const plaintext = await openDecrypted(storage, manifest, key, onBytes);
  let summary: DatabaseSummary;
  if (target.kind === "mysql") {
    const watch = new TableWatch((table, count) => {
      tables = count;
      onProgress?.({ phase: "loading", bytes: loadedBytes, totalBytes, tables, table });
    });
    const { args, env } = clientInvocation(target.url);
    const client = flavorFromVersion(serverVersion).dump.client;
    const child = spawn(client, [...args, "--binary-mode", `--database=${target.database}`], { env, stdio: ["pipe", "ignore", "pipe"] });
    const exited = exitOf(child, client);
    await Promise.all([pipeline(plaintext, watch, child.stdin), exited]);
    onProgress?.({ phase: "verifying", bytes: loadedBytes, totalBytes, tables });
    const db = openServer(target.url, target.database, 1);
    try {
      summary = await summariseMysql(db, target.database, checksumAlgorithm);
    } finally {
      await db.destroy();
    }
  } else {
    const partial = `${target.file}.restoring`;
    await pipeline(plaintext, fs.createWriteStream(partial, { mode: 0o600 }));
    await fs.promises.rename(partial, target.file);
    onProgress?.({ phase: "verifying", bytes: loadedBytes, totalBytes, tables });
    summary = summariseSqliteFile(target.file);
    tables = Object.keys(summary.tables).length;
  }
  const mismatches = compareTables(manifest.tables, summary.tables);
  const migrationsMatch = JSON.stringify(summary.migrations) === JSON.stringify(manifest.migrations);
  return { bytes: loadedBytes, tables: Object.keys(summary.tables).length, durationMs: now() - started, summary, mismatches, migrationsMatch };
}

/** Why a restored copy does not match its manifest; undefined when it does. */
export function restoreProblem(outcome: RestoreOutcome, manifest: BackupManifest): string | undefined {
  const problems: string[] = [];
  if (outcome.mismatches.length > 0) problems.push(describeMismatches(outcome.mismatches));
  if (!outcome.migrationsMatch) {
    problems.push(`migrations differ: restored [${outcome.summary.migrations.join(", ")}], backup has [${manifest.migrations.join(", ")}]`);
  }
  return problems.length === 0 ? undefined : problems.join("; ");
}

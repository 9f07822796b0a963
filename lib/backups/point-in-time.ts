import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import type { DatabaseName } from "../../config/settings";
import type { ObjectStorage } from "../storage/object-storage";
import { planReplay, readArchiveIndexes } from "./binlog-archive-index";
import type { ReplayPoint } from "./binlog-archive-index";
import { fetchArchivedBinlogs, listArchivedBinlogs } from "./binlog-sinks";
import { replayBinlogs } from "./binlog-tools";
import type { BackupManifest } from "./manifest";
import { openServer } from "./mysql-dump";
import type { PointInTimePort, RestoreRequest } from "./restore-command";

/** The archive cannot bring a copy to the point asked for (a missing binlog span, or no archive at all). */
export class MissingBinlogSpanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MissingBinlogSpanError";
  }
}

export interface BringForwardOptions {
  readonly storage: ObjectStorage;
  readonly key: Buffer;
  /** The full backup the copy was restored from: the replay starts at its GTID position. */
  readonly manifest: BackupManifest;
  readonly point: ReplayPoint;
  /** The restored copy: a server (mysql://, an account that may write it) and the database's name there. */
  readonly target: { readonly url: string; readonly database: string };
  /** The database's name on the primary the binary logs come from (e.g. "shoal_media"). */
  readonly sourceDatabase: string;
  readonly onProgress?: (line: string) => void;
  readonly now?: () => number;
}

export interface BroughtForward {
  /** The archive folder replayed from. */
  readonly archive: string;
  readonly files: number;
  readonly sqlBytes: number;
  /** The last GTID per domain replayed (the primary's numbers); the backup's own position when nothing was. */
  readonly position: string;
  readonly durationMs: number;
}

/**
 * Which archive folder and files cover the span from the backup's position to the point, or why none does.
 * Files the index names but storage no longer holds (retention) count as missing.
 */
export async function findReplay(
  storage: ObjectStorage,
  key: Buffer,
  manifest: BackupManifest,
  point: ReplayPoint,
): Promise<{ prefix: string; files: readonly string[]; domains: readonly number[] }> {
  const { archives, unreadable } = await readArchiveIndexes(storage, key);
  const problems: string[] = [];
  for (const { prefix, index } of archives) {
    const present = new Set(await listArchivedBinlogs(storage, prefix));
    const plan = planReplay({ ...index, files: index.files.filter((file) => present.has(file.name)) }, manifest.gtidPosition, point);
    if (plan.ok) return { prefix, files: plan.files, domains: plan.domains };
    problems.push(`${prefix}: ${plan.problem}`);
  }
  if (unreadable.length > 0) problems.push(`archives whose index could not be read with this key: ${unreadable.join(", ")}`);
  if (problems.length === 0) throw new MissingBinlogSpanError("missing binlog span: there is no binlog archive (is the backup service running in cluster mode with a key?)");
  throw new MissingBinlogSpanError(`the archived binary logs do not cover backup ${manifest.id} (GTID ${manifest.gtidPosition || "-"}) to the point asked for: ${problems.join("; ")}`);
}

/**
 * Brings a restored copy forward from its backup's GTID position to a moment or a GTID: fetches and decrypts
 * the archived binary logs that cover the span, and replays only the backup's GTID domains and database's
 * changes (renamed to the copy's database). Throws MissingBinlogSpanError, before changing anything, when the
 * archive does not cover the span.
 */
export async function bringForward(options: BringForwardOptions): Promise<BroughtForward> {
  const { storage, key, manifest, point, target } = options;
  const now = options.now ?? Date.now;
  const started = now();
  const plan = await findReplay(storage, key, manifest, point);
  options.onProgress?.(`replaying ${plan.files.length} archived binary logs from ${plan.prefix} (${plan.files[0]} to ${plan.files[plan.files.length - 1]})`);
  const directory = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-replay-"));
  try {
    const files = await fetchArchivedBinlogs(storage, plan.prefix, plan.files, key, directory);
    const renamed = options.sourceDatabase !== target.database;
    const replayed = await replayBinlogs({
      files,
      target: target.url,
      fromGtid: manifest.gtidPosition,
      until: point,
      domains: plan.domains,
      // mariadb-binlog filters by the name in the log (the primary's), then renames.
      database: options.sourceDatabase,
      ...(renamed ? { renameDatabase: { from: options.sourceDatabase, to: target.database } } : {}),
    });
    const position = replayed.lastGtid || manifest.gtidPosition;
    options.onProgress?.(`replayed ${(replayed.sqlBytes / 1024 / 1024).toFixed(1)} MiB of changes up to GTID ${position}`);
    return { archive: plan.prefix, files: files.length, sqlBytes: replayed.sqlBytes, position, durationMs: now() - started };
  } finally {
    await fs.promises.rm(directory, { recursive: true, force: true });
  }
}

function replayPointOf(request: RestoreRequest): ReplayPoint {
  if (request.point.kind === "at") return { time: request.point.time };
  if (request.point.kind === "gtid") return { gtid: request.point.position };
  throw new Error("not a point-in-time restore");
}

function mysqlTargetOf(request: RestoreRequest): { url: string; database: string } {
  if (request.target.kind !== "mysql") throw new MissingBinlogSpanError("point-in-time restores replay binary logs into a MariaDB server: give a mysql:// target");
  return { url: request.target.url, database: request.target.database };
}

/** The table a point-in-time restore leaves in a copy whose replay failed half-way, with the reason. */
export const FAILED_RESTORE_TABLE = "shoal_restore_failed";

/** `npm run restore --at|--gtid`: the archive under the backup storage, the database's name on the primary from the settings. */
export function pointInTimeRestores(options: {
  readonly storage: ObjectStorage;
  readonly key: Buffer;
  readonly sourceDatabase: (database: DatabaseName) => string;
  readonly print: (line: string) => void;
}): PointInTimePort {
  return {
    async check(request, manifest) {
      mysqlTargetOf(request);
      const plan = await findReplay(options.storage, options.key, manifest, replayPointOf(request));
      options.print(`the binlog archive ${plan.prefix} covers the span: ${plan.files.length} files to replay`);
    },
    async run(request, manifest) {
      const done = await bringForward({
        storage: options.storage,
        key: options.key,
        manifest,
        point: replayPointOf(request),
        target: mysqlTargetOf(request),
        sourceDatabase: options.sourceDatabase(request.database),
        onProgress: options.print,
      });
      return `brought forward to GTID ${done.position} (${done.files} binary logs, ${(done.durationMs / 1000).toFixed(1)} s)`;
    },
    async markFailed(request, reason) {
      const target = mysqlTargetOf(request);
      const db = openServer(target.url, target.database, 1);
      try {
        await sql`create table if not exists ${sql.id(FAILED_RESTORE_TABLE)} (reason text not null, at datetime not null)`.execute(db);
        await sql`insert into ${sql.id(FAILED_RESTORE_TABLE)} values (${reason.slice(0, 4000)}, utc_timestamp())`.execute(db);
      } finally {
        await db.destroy();
      }
      return `it holds a table ${FAILED_RESTORE_TABLE} with the reason`;
    },
  };
}

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import type { DatabaseName } from "../../config/settings";
import type { ObjectStorage } from "../storage/object-storage";
import { planChainedReplay, readArchiveIndexes } from "./binlog-archive-index";
import type { ReplayPoint, ReplaySegment } from "./binlog-archive-index";
import type { ArchiveIndex } from "./binlog-archiver";
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
  /** The archive folders replayed from, in order (more than one across a promotion). */
  readonly archive: string;
  readonly files: number;
  readonly sqlBytes: number;
  /** The last GTID per domain replayed (the primary's numbers); the backup's own position when nothing was. */
  readonly position: string;
  readonly durationMs: number;
}

/**
 * Which archives and files cover the span from the backup's position to the point (across promotions: the old
 * primary's archive up to where the new primary's starts, then the new one's), or why none does. Files the
 * index names but storage no longer holds (retention) count as missing.
 */
export async function findReplay(
  storage: ObjectStorage,
  key: Buffer,
  manifest: BackupManifest,
  point: ReplayPoint,
): Promise<{ segments: readonly ReplaySegment[]; domains: readonly number[] }> {
  const { archives, unreadable } = await readArchiveIndexes(storage, key);
  const present: { prefix: string; index: ArchiveIndex }[] = [];
  for (const { prefix, index } of archives) {
    const stored = new Set(await listArchivedBinlogs(storage, prefix));
    present.push({ prefix, index: { ...index, files: index.files.filter((file) => stored.has(file.name)) } });
  }
  const plan = planChainedReplay(present, manifest.gtidPosition, point);
  if (plan.ok) return plan;
  const problems = [...plan.problems];
  if (unreadable.length > 0) problems.push(`archives whose index could not be read with this key: ${unreadable.join(", ")}`);
  if (problems.length === 0) throw new MissingBinlogSpanError("missing binlog span: there is no binlog archive (is the backup service running in cluster mode with a key?)");
  throw new MissingBinlogSpanError(`the archived binary logs do not cover backup ${manifest.id} (GTID ${manifest.gtidPosition || "-"}) to the point asked for: ${problems.join("; ")}`);
}

/** "backups/binlog/a-3306-server-1/ (mysql-bin.000002 to mysql-bin.000003), then ..." */
export function describeSegments(segments: readonly ReplaySegment[]): string {
  return segments
    .map((segment) => `${segment.prefix} (${segment.files[0]} to ${segment.files[segment.files.length - 1]}${segments.length > 1 && "gtid" in segment.until && segment !== segments[segments.length - 1] ? `, up to GTID ${segment.until.gtid}` : ""})`)
    .join(", then ");
}

/**
 * Brings a restored copy forward from its backup's GTID position to a moment or a GTID: fetches and decrypts
 * the archived binary logs that cover the span, and replays only the backup's GTID domains and database's
 * changes (renamed to the copy's database), one archive after the other across promotions. Throws
 * MissingBinlogSpanError, before changing anything, when the archives do not cover the span.
 */
export async function bringForward(options: BringForwardOptions): Promise<BroughtForward> {
  const { storage, key, manifest, point, target } = options;
  const now = options.now ?? Date.now;
  const started = now();
  const plan = await findReplay(storage, key, manifest, point);
  const fileCount = plan.segments.reduce((total, segment) => total + segment.files.length, 0);
  options.onProgress?.(`replaying ${fileCount} archived binary logs from ${describeSegments(plan.segments)}`);
  const directory = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-replay-"));
  try {
    const renamed = options.sourceDatabase !== target.database;
    let sqlBytes = 0;
    let position = manifest.gtidPosition;
    for (const [number, segment] of plan.segments.entries()) {
      // Each archive apart: two primaries' logs may carry the same file names.
      const files = await fetchArchivedBinlogs(storage, segment.prefix, segment.files, key, path.join(directory, String(number)));
      const replayed = await replayBinlogs({
        files,
        target: target.url,
        fromGtid: segment.from,
        until: segment.until,
        domains: plan.domains,
        // mariadb-binlog filters by the name in the log (the primary's), then renames.
        database: options.sourceDatabase,
        ...(renamed ? { renameDatabase: { from: options.sourceDatabase, to: target.database } } : {}),
      });
      sqlBytes += replayed.sqlBytes;
      if (replayed.lastGtid !== "") position = replayed.lastGtid;
    }
    options.onProgress?.(`replayed ${(sqlBytes / 1024 / 1024).toFixed(1)} MiB of changes up to GTID ${position}`);
    return { archive: plan.segments.map((segment) => segment.prefix).join(", "), files: fileCount, sqlBytes, position, durationMs: now() - started };
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
      const files = plan.segments.reduce((total, segment) => total + segment.files.length, 0);
      options.print(`the binlog archive covers the span: ${files} files to replay from ${describeSegments(plan.segments)}`);
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

import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { DATABASE_NAMES } from "../../config/settings";
import type { DatabaseName, Settings } from "../../config/settings";
import { listManifests } from "./backup-files";
import { BACKUP_KEY_FILE } from "./backup-key";
import { parseBackupKey } from "./encryption";
import type { BackupManifest } from "./manifest";
import type { RestoreTarget } from "./restore";
import type { ObjectStorage } from "../storage/object-storage";

export interface RestoreRequest {
  readonly database: DatabaseName;
  readonly point: { readonly kind: "newest" } | { readonly kind: "at"; readonly time: Date } | { readonly kind: "gtid"; readonly position: string } | { readonly kind: "backup"; readonly id: string };
  readonly target: RestoreTarget;
  readonly force: boolean;
}

export class RestoreUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RestoreUsageError";
  }
}

export const RESTORE_USAGE =
  "npm run restore -- --database membership|media|site [--at <ISO time> | --gtid <position> | --backup <id>] --target <mysql://user:pass@host:port/db | data directory> [--force]";

/** Reads the command line; throws RestoreUsageError with the reason for anything missing or malformed. */
export function parseRestoreArguments(argv: readonly string[], settings: Pick<Settings, "databases">): RestoreRequest {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        database: { type: "string" },
        at: { type: "string" },
        gtid: { type: "string" },
        backup: { type: "string" },
        target: { type: "string" },
        force: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new RestoreUsageError((error as Error).message);
  }
  const database = values.database;
  if (typeof database !== "string" || !(DATABASE_NAMES as readonly string[]).includes(database)) {
    throw new RestoreUsageError(`--database must be one of ${DATABASE_NAMES.join(", ")}`);
  }
  const points = (["at", "gtid", "backup"] as const).filter((name) => values[name] !== undefined);
  if (points.length > 1) throw new RestoreUsageError("give at most one of --at, --gtid and --backup");
  let point: RestoreRequest["point"] = { kind: "newest" };
  if (typeof values.at === "string") {
    const time = new Date(values.at);
    if (Number.isNaN(time.getTime())) throw new RestoreUsageError(`--at ${JSON.stringify(values.at)} is not an ISO time`);
    point = { kind: "at", time };
  } else if (typeof values.gtid === "string") {
    if (!/^\d+-\d+-\d+(,\d+-\d+-\d+)*$|^[0-9a-f-]{36}:[\d:-]+/i.test(values.gtid)) throw new RestoreUsageError(`--gtid ${JSON.stringify(values.gtid)} is not a GTID position`);
    point = { kind: "gtid", position: values.gtid };
  } else if (typeof values.backup === "string") {
    if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(values.backup)) throw new RestoreUsageError(`--backup ${JSON.stringify(values.backup)} is not a backup id`);
    point = { kind: "backup", id: values.backup };
  }
  if (typeof values.target !== "string" || values.target === "") throw new RestoreUsageError("--target is required");
  return { database: database as DatabaseName, point, target: parseTarget(values.target, database as DatabaseName, settings), force: values.force === true };
}

function parseTarget(value: string, database: DatabaseName, settings: Pick<Settings, "databases">): RestoreTarget {
  if (value.startsWith("mysql://")) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new RestoreUsageError("--target is not a valid mysql:// URL");
    }
    const named = decodeURIComponent(url.pathname.replace(/^\//, ""));
    const configured = settings.databases[database];
    const name = named !== "" ? named : configured.kind === "mysql" ? configured.database : `shoal_${database}`;
    if (!/^[A-Za-z0-9_]+$/.test(name)) throw new RestoreUsageError(`--target names the database ${JSON.stringify(name)}: only letters, digits and _`);
    url.pathname = "";
    return { kind: "mysql", url: url.toString(), database: name };
  }
  return { kind: "sqlite", file: path.join(path.resolve(value), `${database}.sqlite`) };
}

/** Per GTID domain, the highest sequence number (MariaDB positions: domain-server-seq, comma-separated). */
function sequences(position: string): Map<string, bigint> {
  const map = new Map<string, bigint>();
  for (const part of position.split(",").map((item) => item.trim()).filter(Boolean)) {
    const [domain, , seq] = part.split("-");
    if (domain !== undefined && seq !== undefined) map.set(domain, BigInt(seq));
  }
  return map;
}

/** Whether every transaction of `position` is included in `target` (MariaDB positions). */
export function gtidIncludedIn(position: string, target: string): boolean {
  const wanted = sequences(target);
  return [...sequences(position)].every(([domain, seq]) => seq <= (wanted.get(domain) ?? -1n));
}

/** The backup to restore for the request: the newest full backup taken at or before the point. */
export function chooseBackup(manifests: readonly BackupManifest[], point: RestoreRequest["point"]): BackupManifest | undefined {
  const candidates = (() => {
    switch (point.kind) {
      case "newest":
        return manifests;
      case "backup":
        return manifests.filter((manifest) => manifest.id === point.id);
      case "at":
        return manifests.filter((manifest) => Date.parse(manifest.takenAt) <= point.time.getTime());
      case "gtid":
        return manifests.filter((manifest) => gtidIncludedIn(manifest.gtidPosition, point.position));
    }
  })();
  return [...candidates].sort((a, b) => a.takenAt.localeCompare(b.takenAt) || a.id.localeCompare(b.id)).pop();
}

/** The backup key for reading: BACKUP_ENCRYPTION_KEY, else the one an embedded node made in its data directory; never a new one. */
export function readBackupKey(settings: Pick<Settings, "backups" | "dataDir">): Buffer {
  if (settings.backups.encryptionKey !== undefined) return parseBackupKey(settings.backups.encryptionKey);
  const file = path.join(settings.dataDir, BACKUP_KEY_FILE);
  if (!fs.existsSync(file)) throw new RestoreUsageError(`no backup key: set BACKUP_ENCRYPTION_KEY (the data directory has no ${BACKUP_KEY_FILE})`);
  return parseBackupKey(fs.readFileSync(file, "utf8"));
}

export { listManifests };

/** Point-in-time restores: the archive is checked to cover the span before the target is touched, then replayed. */
export interface PointInTimePort {
  /** Throws (MissingBinlogSpanError) when the archive cannot bring the backup to the point. */
  check(request: RestoreRequest, manifest: BackupManifest): Promise<void>;
  /** Replays up to the point; answers the line to print (files, position reached). */
  run(request: RestoreRequest, manifest: BackupManifest): Promise<string>;
  /** After a replay failed half-way: marks the copy as unusable (answers how). */
  markFailed(request: RestoreRequest, reason: string): Promise<string>;
}

export interface RestoreCommandPorts {
  readonly storage: ObjectStorage;
  readonly key: Buffer;
  /** Progress lines (throttled) and the summary. */
  readonly print: (line: string) => void;
  /** Brings the restored copy forward to the point with archived binary logs; undefined when there are none to replay. */
  readonly replay?: PointInTimePort;
  readonly audit?: (action: string, detail: Record<string, unknown>) => Promise<void>;
  /** media: puts back the files the backup goes with (embedded); answers a summary line. */
  readonly restoreFiles?: (manifest: BackupManifest) => Promise<string>;
  readonly now?: () => number;
}

const MiB = 1024 * 1024;

/** `npm run restore`: chooses the backup, restores and checks it, replays binary logs up to the point when asked; throws on any failure. */
export async function runRestore(request: RestoreRequest, ports: RestoreCommandPorts): Promise<{ manifest: BackupManifest; durationMs: number }> {
  const { restoreBackup, restoreProblem, describeTarget } = await import("./restore");
  const now = ports.now ?? Date.now;
  const started = now();
  const { manifests, unreadable } = await listManifests(ports.storage, request.database, ports.key);
  if (unreadable.length > 0) ports.print(`skipped ${unreadable.length} manifests that could not be read with this key: ${unreadable.join(", ")}`);
  const manifest = chooseBackup(manifests, request.point);
  if (manifest === undefined) throw new RestoreUsageError(`no backup of ${request.database} at or before the point asked for (${manifests.length} backups stored)`);
  const pointInTime = request.point.kind === "at" || request.point.kind === "gtid";
  if (pointInTime) {
    if (ports.replay === undefined) throw new RestoreUsageError("point-in-time restores (--at, --gtid) need the binlog archive: cluster mode, a mysql:// target");
    // Before the target is touched: a span the archive lacks is refused with the target as it was.
    await ports.replay.check(request, manifest);
  }
  ports.print(`restoring ${request.database} from backup ${manifest.id} taken ${manifest.takenAt} (GTID ${manifest.gtidPosition || "-"}) into ${describeTarget(request.target)}`);
  let lastPrinted = 0;
  const outcome = await restoreBackup({
    storage: ports.storage,
    key: ports.key,
    manifest,
    target: request.target,
    force: request.force,
    now,
    onProgress: (progress) => {
      const moment = now();
      if (moment - lastPrinted < 1000 && progress.bytes < progress.totalBytes) return;
      lastPrinted = moment;
      const table = progress.table === undefined ? "" : `, table ${progress.table}`;
      ports.print(`${progress.phase}: ${(progress.bytes / MiB).toFixed(1)} of ${(progress.totalBytes / MiB).toFixed(1)} MiB, ${progress.tables} tables${table}`);
    },
  });
  const problem = restoreProblem(outcome, manifest);
  if (problem !== undefined) throw new Error(`the restored copy does not match backup ${manifest.id}: ${problem}`);
  ports.print(`checked ${outcome.tables} tables: rows, checksums and migrations match the backup`);
  if (request.database === "media" && ports.restoreFiles !== undefined) ports.print(await ports.restoreFiles(manifest));
  if (pointInTime && ports.replay !== undefined) {
    try {
      ports.print(await ports.replay.run(request, manifest));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const marked = await ports.replay.markFailed(request, reason).catch((markError: unknown) => `it could not be marked (${String(markError)})`);
      throw new Error(`replaying the binary logs failed, so ${describeTarget(request.target)} stands somewhere between the backup and the point: do not use it; ${marked}. ${reason}`);
    }
  }
  const durationMs = now() - started;
  ports.print(`restored ${request.database} in ${(durationMs / 1000).toFixed(1)} s`);
  await ports.audit?.("backup.restored", { database: request.database, backupId: manifest.id, target: describeTarget(request.target), durationMs });
  return { manifest, durationMs };
}

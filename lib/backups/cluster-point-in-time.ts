import type { DatabaseName, DatabaseSettings } from "../../config/settings";
import type { RenewableLeaseLock } from "../jobs/lease-lock";
import type { ObjectStorage } from "../storage/object-storage";
import { listManifests } from "./backup-files";
import { binlogsToDelete, newestArchivedGtids, readArchiveIndexes } from "./binlog-archive-index";
import { archivedServers, BinlogArchiving } from "./binlog-archiving";
import type { BinlogArchivingOptions } from "./binlog-archiving";
import { parseGtidState } from "./binlog-events";
import { listArchivedBinlogs } from "./binlog-sinks";
import type { AdminAccount } from "./dump-sources";
import type { BackupManifest } from "./manifest";
import { bringForward, MissingBinlogSpanError } from "./point-in-time";
import type { RestoreTarget } from "./restore";

/**
 * A drill's binlog step: brings the restored copy forward from the backup's position to the newest GTID the
 * archive holds (in the backup's domains), then checks that the copy reached exactly that position. A span
 * the archive lacks fails the drill; with no archive at all yet (a new site), the copy stays at the backup.
 */
export function drillReplay(options: {
  readonly storage: ObjectStorage;
  readonly key: Buffer;
  readonly sourceDatabase: (database: DatabaseName) => string | undefined;
}): (manifest: BackupManifest, target: RestoreTarget) => Promise<string | undefined> {
  return async (manifest, target) => {
    const source = options.sourceDatabase(manifest.database);
    if (target.kind !== "mysql" || source === undefined || manifest.gtidPosition === "") return undefined;
    const { archives } = await readArchiveIndexes(options.storage, options.key);
    if (archives.length === 0) return undefined;
    const from = parseGtidState(manifest.gtidPosition);
    // The position asked for: the newest the archives hold in the backup's domains.
    const wanted = new Map([...newestArchivedGtids(archives.map(({ index }) => index))].filter(([domain]) => from.has(domain)));
    const ahead = [...wanted].filter(([domain, { seq }]) => seq > (from.get(domain)?.seq ?? 0n));
    if (ahead.length === 0) return undefined;
    const asked = [...wanted].map(([domain, { serverId, seq }]) => `${domain}-${serverId}-${seq}`).join(",");
    try {
      const done = await bringForward({ storage: options.storage, key: options.key, manifest, point: { gtid: asked }, target, sourceDatabase: source });
      const reached = parseGtidState(done.position);
      const short = [...wanted].filter(([domain, { seq }]) => (reached.get(domain)?.seq ?? 0n) !== seq);
      if (short.length > 0) return `the binlog replay reached GTID ${done.position}, not ${asked} as asked`;
      return undefined;
    } catch (error) {
      if (error instanceof MissingBinlogSpanError) return error.message;
      return `the binlog replay failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  };
}

/**
 * Binlog retention: deletes archived binary logs that no kept full backup needs, that is, those wholly at or
 * before the oldest kept backup's GTID position (of any database). Answers how many were deleted.
 */
export async function applyBinlogRetention(storage: ObjectStorage, key: Buffer, databases: readonly DatabaseName[]): Promise<number> {
  const oldest: BackupManifest[] = [];
  for (const database of databases) {
    const { manifests } = await listManifests(storage, database, key);
    const first = manifests.find((manifest) => manifest.gtidPosition !== "");
    if (first !== undefined) oldest.push(first);
  }
  if (oldest.length === 0) return 0;
  const position = oldest.sort((a, b) => a.takenAt.localeCompare(b.takenAt))[0]!.gtidPosition;
  const { archives } = await readArchiveIndexes(storage, key);
  let deleted = 0;
  for (const { prefix, index } of archives) {
    const present = new Set(await listArchivedBinlogs(storage, prefix));
    for (const name of binlogsToDelete(index, position)) {
      if (!present.has(name)) continue;
      await storage.delete(`${prefix}${name}`);
      deleted++;
    }
  }
  return deleted;
}

/**
 * Point-in-time recovery in a running cluster: the archivers, drills that replay the archive, the archive's
 * part of the health check and its retention. Undefined without a backup key or without MariaDB databases.
 */
export function clusterPointInTime(options: {
  readonly databases: Readonly<Record<DatabaseName, DatabaseSettings>>;
  readonly account: AdminAccount;
  readonly storage: ObjectStorage;
  readonly key: Buffer | undefined;
  readonly leaseLock: (name: string) => RenewableLeaseLock;
  readonly dataDir: string;
  readonly flushIntervalMs: number;
  readonly loadTopology?: BinlogArchivingOptions["loadTopology"];
  readonly log: BinlogArchivingOptions["log"];
}):
  | {
      readonly archiving: BinlogArchiving;
      withReplay<S extends { kind: string }>(scratch: S): S;
      health<C extends { status: string; problems?: unknown }>(check: C): Promise<C>;
      retention(): Promise<number>;
    }
  | undefined {
  const { key, storage } = options;
  const servers = archivedServers(options.databases, options.account);
  if (key === undefined || servers.length === 0) return undefined;
  const archiving = new BinlogArchiving({
    servers,
    storage,
    key,
    leaseLock: options.leaseLock,
    ...(options.loadTopology ? { loadTopology: options.loadTopology } : {}),
    dataDir: options.dataDir,
    flushIntervalMs: options.flushIntervalMs,
    log: options.log,
  });
  const bringForwardInDrill = drillReplay({
    storage,
    key,
    sourceDatabase: (database) => {
      const configured = options.databases[database];
      return configured.kind === "mysql" ? configured.database : undefined;
    },
  });
  return {
    archiving,
    withReplay: (scratch) => (scratch.kind === "mysql" ? { ...scratch, bringForward: bringForwardInDrill } : scratch),
    async health(check) {
      const { problems, detail } = await archiving.health();
      const before = Array.isArray(check.problems) ? (check.problems as string[]) : [];
      const all = [...before, ...problems];
      return { ...check, binlogArchive: detail, ...(all.length > 0 ? { status: check.status === "ok" ? "degraded" : check.status, problems: all } : {}) };
    },
    retention: () => applyBinlogRetention(storage, key, Object.keys(options.databases) as DatabaseName[]),
  };
}

/** The REPL's lines for `backups`: each primary's archive, then its problems. */
export function formatArchiveStatus(status: { problems: readonly string[]; detail: unknown }): string[] {
  const entries = Array.isArray(status.detail) ? (status.detail as Record<string, unknown>[]) : [];
  const lines = entries.map((entry) => {
    const where = entry.runsHere === true ? `${String(entry.state)} here` : "archived by another node";
    const upload = typeof entry.lastUploadAt === "string" ? `, last upload ${entry.lastUploadAt}` : "";
    const gtid = typeof entry.lastGtid === "string" && entry.lastGtid !== "" ? `, last GTID ${entry.lastGtid}` : "";
    const error = typeof entry.lastError === "string" ? `, last error: ${entry.lastError}` : "";
    return `binlog archive of ${String(entry.server)}${typeof entry.archive === "string" ? ` (${entry.archive})` : ""}: ${where}${upload}${gtid}${error}`;
  });
  return [...lines, ...status.problems.map((problem) => `problem: ${problem}`)];
}

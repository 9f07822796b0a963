import path from "node:path";
import mysql from "mysql2/promise";
import type { RowDataPacket } from "mysql2/promise";
import type { DatabaseName, DatabaseSettings } from "../../config/settings";
import type { RenewableLeaseLock } from "../jobs/lease-lock";
import type { ObjectStorage } from "../storage/object-storage";
import { SingletonDuty } from "../scheduling/singleton-duty";
import { listManifests } from "./backup-files";
import { archivePrefix, binlogsToDelete, readArchiveIndexes } from "./binlog-archive-index";
import { BinlogArchiver } from "./binlog-archiver";
import type { BinlogArchiverStatus } from "./binlog-archiver";
import { parseGtidState } from "./binlog-events";
import { encryptedArchiveSink, listArchivedBinlogs } from "./binlog-sinks";
import { storeArchiveIndex } from "./binlog-archive-index";
import { mariadbBinlogPorts } from "./binlog-tools";
import type { RestoreTarget } from "./restore";
import type { BackupManifest } from "./manifest";
import { bringForward, MissingBinlogSpanError } from "./point-in-time";
import { withAccount } from "./dump-sources";
import type { AdminAccount } from "./dump-sources";

/** The server id the archiver's stream registers with on the primary (as a replica would); no server or replica may use it. */
export const ARCHIVER_SERVER_ID = 4_000_000_101;
/** A node that dies holding the archiver's lease is replaced within this long. */
const DUTY_LEASE_MS = 30_000;
/** Nodes that do not run an archiver read its index from storage at most this often for their health answer. */
const INDEX_READ_INTERVAL_MS = 60_000;

export interface ArchivedServer {
  /** host:port of the primary, as configured. */
  readonly label: string;
  /** The primary with the account that streams its binary log (REPLICATION SLAVE, BINLOG MONITOR). */
  readonly url: string;
  /** The databases on it, and their names there. */
  readonly databases: readonly { readonly name: DatabaseName; readonly database: string }[];
}

/** The distinct primaries of the MariaDB databases (by default one server holds all three). */
export function archivedServers(databases: Readonly<Record<DatabaseName, DatabaseSettings>>, account: AdminAccount): ArchivedServer[] {
  const servers = new Map<string, { url: string; databases: { name: DatabaseName; database: string }[] }>();
  for (const [name, configured] of Object.entries(databases) as [DatabaseName, DatabaseSettings][]) {
    if (configured.kind !== "mysql") continue;
    const url = new URL(configured.primaryUrl);
    const label = `${url.hostname}:${url.port || "3306"}`;
    const server = servers.get(label) ?? { url: withAccount(configured.primaryUrl, account), databases: [] };
    server.databases.push({ name, database: configured.database });
    servers.set(label, server);
  }
  return [...servers.entries()].map(([label, server]) => ({ label, ...server }));
}

export interface BinlogArchivingOptions {
  readonly servers: readonly ArchivedServer[];
  readonly storage: ObjectStorage;
  readonly key: Buffer;
  readonly leaseLock: (name: string) => RenewableLeaseLock;
  /** The local copies of the streamed logs go under <dataDir>/binlog-archive/. */
  readonly dataDir: string;
  readonly flushIntervalMs: number;
  readonly log: { info(message: string): void; warn(message: string): void; error(message: string): void };
}

interface RunningArchive {
  readonly prefix: string;
  readonly archiver: BinlogArchiver;
}

async function serverIdOf(url: string): Promise<number> {
  const client = await mysql.createConnection({ uri: url, connectTimeout: 5000 });
  try {
    const [rows] = await client.query<RowDataPacket[]>("SELECT @@server_id AS id");
    return Number(rows[0]?.id);
  } finally {
    client.destroy();
  }
}

/**
 * One binlog archiver per primary, cluster-wide: each node competes for the primary's lease
 * (`binlog-archive:<host:port>`), the holder streams and uploads its binary log under
 * backups/binlog/<host>-<port>-server-<server id>/ (so that a promoted replica's archive never mixes
 * with the old primary's), and another node takes over within the lease when the holder dies.
 */
export class BinlogArchiving {
  private readonly duties: { server: ArchivedServer; duty: SingletonDuty; running: RunningArchive | undefined }[] = [];
  private indexRead: { at: number; gaps: string[]; lastUploadAt: number | undefined } | undefined;

  constructor(private readonly options: BinlogArchivingOptions) {}

  start(): void {
    for (const server of this.options.servers) {
      const entry: (typeof this.duties)[number] = { server, duty: undefined as unknown as SingletonDuty, running: undefined };
      entry.duty = new SingletonDuty({
        name: `binlog archive of ${server.label}`,
        lock: this.options.leaseLock(`binlog-archive:${server.label}`),
        leaseMs: DUTY_LEASE_MS,
        log: this.options.log,
        begin: async () => {
          const url = new URL(server.url);
          const prefix = archivePrefix(url.hostname, Number(url.port || "3306"), await serverIdOf(server.url));
          const sink = encryptedArchiveSink(this.options.storage, prefix, this.options.key);
          const archiver = new BinlogArchiver(
            mariadbBinlogPorts({
              url: server.url,
              serverId: ARCHIVER_SERVER_ID,
              sink: { put: sink.put, putIndex: (index) => storeArchiveIndex(this.options.storage, prefix, index, this.options.key) },
            }),
            {
              directory: path.join(this.options.dataDir, "binlog-archive", prefix.slice(0, -1).split("/").pop() as string),
              flushIntervalMs: this.options.flushIntervalMs,
              log: this.options.log,
            },
          );
          await archiver.start();
          entry.running = { prefix, archiver };
          return async () => {
            entry.running = undefined;
            await archiver.stop();
          };
        },
      });
      this.duties.push(entry);
      entry.duty.start();
    }
  }

  async stop(): Promise<void> {
    for (const { duty } of this.duties.splice(0)) await duty.stop();
  }

  /** Per primary: whether this node archives it, and the archiver's status when it does. */
  status(): { server: string; here: boolean; archive?: string; status?: BinlogArchiverStatus; lastError?: string }[] {
    return this.duties.map(({ server, duty, running }) => ({
      server: server.label,
      here: running !== undefined,
      ...(running ? { archive: running.prefix, status: running.archiver.status() } : {}),
      ...(duty.status().lastError !== undefined ? { lastError: duty.status().lastError } : {}),
    }));
  }

  /**
   * The archive's part of the `backups` health check: its status where it runs here, and from every node
   * the gaps recorded in the archives' indexes (read from storage at most once a minute). A gap is a problem.
   */
  async health(): Promise<{ problems: string[]; detail: unknown }> {
    const problems: string[] = [];
    const local = this.status();
    for (const entry of local) {
      for (const gap of entry.status?.gaps ?? []) {
        problems.push(`binlog archive of ${entry.server}: GTID gap, domain ${gap.domain} sequence ${gap.missingFrom} to ${gap.missingTo} is not archived (take a full backup)`);
      }
    }
    if (!local.some((entry) => entry.here)) {
      const now = Date.now();
      if (this.indexRead === undefined || now - this.indexRead.at > INDEX_READ_INTERVAL_MS) {
        const { archives } = await readArchiveIndexes(this.options.storage, this.options.key).catch(() => ({ archives: [] }));
        const gaps = archives.flatMap(({ prefix, index }) =>
          index.gaps.map((gap) => `binlog archive ${prefix}: GTID gap, domain ${gap.domain} sequence ${gap.missingFrom} to ${gap.missingTo} is not archived (take a full backup)`),
        );
        const uploads = archives.map(({ index }) => index.updatedAt);
        this.indexRead = { at: now, gaps, lastUploadAt: uploads.length > 0 ? Math.max(...uploads) : undefined };
      }
      problems.push(...this.indexRead.gaps);
    }
    const detail = local.map((entry) => ({
      server: entry.server,
      runsHere: entry.here,
      ...(entry.archive ? { archive: entry.archive } : {}),
      ...(entry.status
        ? {
            state: entry.status.state,
            lastUploadAt: entry.status.lastUploadAt === undefined ? null : new Date(entry.status.lastUploadAt).toISOString(),
            lastGtid: entry.status.archivedGtid,
            gaps: entry.status.gaps.length,
            ...(entry.status.lastError ? { lastError: entry.status.lastError } : {}),
          }
        : this.indexRead?.lastUploadAt !== undefined
          ? { lastUploadAt: new Date(this.indexRead.lastUploadAt).toISOString() }
          : {}),
    }));
    return { problems, detail };
  }
}

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
    const wanted = new Map<number, { serverId: number; seq: bigint }>();
    for (const { index } of archives) {
      for (const [domain, gtid] of parseGtidState(index.archivedGtid)) {
        if (from.has(domain) && gtid.seq > (wanted.get(domain)?.seq ?? -1n)) wanted.set(domain, gtid);
      }
    }
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
  const archiving = new BinlogArchiving({ servers, storage, key, leaseLock: options.leaseLock, dataDir: options.dataDir, flushIntervalMs: options.flushIntervalMs, log: options.log });
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

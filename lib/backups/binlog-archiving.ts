import path from "node:path";
import mysql from "mysql2/promise";
import type { RowDataPacket } from "mysql2/promise";
import type { DatabaseName, DatabaseSettings } from "../../config/settings";
import type { RenewableLeaseLock } from "../jobs/lease-lock";
import type { ObjectStorage } from "../storage/object-storage";
import { SingletonDuty } from "../scheduling/singleton-duty";
import { resolveTopology, serverOf } from "../db/topology";
import type { StoredTopology } from "../db/topology";
import { archivePrefix, newestArchivedGtids, readArchiveIndexes, serverArchivesPrefix, storeArchiveIndex } from "./binlog-archive-index";
import { BinlogArchiver } from "./binlog-archiver";
import type { BinlogArchiverStatus } from "./binlog-archiver";
import { formatGtidState } from "./binlog-events";
import { encryptedArchiveSink } from "./binlog-sinks";
import { mariadbBinlogPorts } from "./binlog-tools";
import { withAccount } from "./dump-sources";
import type { AdminAccount } from "./dump-sources";

/** The server id the archiver's stream registers with on the primary (as a replica would); no server or replica may use it. */
export const ARCHIVER_SERVER_ID = 4_000_000_101;
/** A node that dies holding the archiver's lease is replaced within this long. */
const DUTY_LEASE_MS = 30_000;
/** Nodes that do not run an archiver read its index from storage at most this often for their health answer. */
const INDEX_READ_INTERVAL_MS = 60_000;

export interface ArchivedServer {
  /** host:port of the primary the settings name: it names the group of servers (a promotion does not change it). */
  readonly label: string;
  /** The configured primary with the account that streams its binary log (REPLICATION SLAVE, BINLOG MONITOR). */
  readonly url: string;
  /** The configured replicas with that account: one of them is the primary after a promotion. */
  readonly replicaUrls: readonly string[];
  /** The databases on it, and their names there. */
  readonly databases: readonly { readonly name: DatabaseName; readonly database: string }[];
}

/** The distinct primaries of the MariaDB databases (by default one server holds all three). */
export function archivedServers(databases: Readonly<Record<DatabaseName, DatabaseSettings>>, account: AdminAccount): ArchivedServer[] {
  const servers = new Map<string, { url: string; replicaUrls: string[]; databases: { name: DatabaseName; database: string }[] }>();
  for (const [name, configured] of Object.entries(databases) as [DatabaseName, DatabaseSettings][]) {
    if (configured.kind !== "mysql") continue;
    const label = serverOf(configured.primaryUrl);
    const server = servers.get(label) ?? {
      url: withAccount(configured.primaryUrl, account),
      replicaUrls: configured.replicaUrls.map((url) => withAccount(url, account)),
      databases: [],
    };
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
  /** What a promotion stored (the topology every node follows); without it the configured primaries are archived. */
  readonly loadTopology?: (database: DatabaseName) => Promise<StoredTopology | undefined>;
  /** The local copies of the streamed logs go under <dataDir>/binlog-archive/. */
  readonly dataDir: string;
  readonly flushIntervalMs: number;
  readonly log: { info(message: string): void; warn(message: string): void; error(message: string): void };
}

interface RunningArchive {
  /** host:port of the primary archived. */
  readonly primary: string;
  readonly prefix: string;
  readonly archiver: BinlogArchiver;
}

interface ArchiveDuty {
  readonly server: ArchivedServer;
  duty: SingletonDuty;
  /** This node holds the group's lease. */
  holding: boolean;
  running: RunningArchive | undefined;
  /** host:port of the primary as last resolved here (the configured one until a promotion is read). */
  primary: string;
  checkedAt: number;
  /** Switches one at a time. */
  following: Promise<void>;
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

/** While the archiver is not streaming, how often the stored topology is read again (in case a promotion's broadcast was missed). */
const TOPOLOGY_RECHECK_MS = 5000;
/** While it streams, how often (a switchover may leave the old primary up). */
const STREAMING_TOPOLOGY_RECHECK_MS = 60_000;

/**
 * One binlog archiver per group of servers, cluster-wide: each node competes for the group's lease
 * (`binlog-archive:<configured primary host:port>`, which a promotion does not change), the holder streams
 * and uploads the current primary's binary log under backups/binlog/<host>-<port>-server-<server id>/ (so
 * that a promoted replica's archive never mixes with the old primary's), and another node takes over within
 * the lease when the holder dies. The current primary is the one every node follows: the settings', or the
 * promoted one stored by `db:promote`, read at the start, on its broadcast, and again every few seconds while
 * the archiver cannot stream; a promoted primary's archive continues from what the earlier ones hold.
 */
export class BinlogArchiving {
  private readonly duties: ArchiveDuty[] = [];
  private indexRead: { at: number; gaps: string[]; lastUploadAt: number | undefined } | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: BinlogArchivingOptions) {}

  start(): void {
    for (const server of this.options.servers) {
      const entry: ArchiveDuty = {
        server,
        duty: undefined as unknown as SingletonDuty,
        holding: false,
        running: undefined,
        primary: server.label,
        checkedAt: 0,
        following: Promise.resolve(),
      };
      entry.duty = new SingletonDuty({
        name: `binlog archive of ${server.label}`,
        lock: this.options.leaseLock(`binlog-archive:${server.label}`),
        leaseMs: DUTY_LEASE_MS,
        log: this.options.log,
        begin: async () => {
          const url = (await this.primaryUrlOf(entry)) ?? server.url;
          entry.running = await this.archive(server, url);
          entry.holding = true;
          return async () => {
            entry.holding = false;
            await entry.following;
            const running = entry.running;
            entry.running = undefined;
            await running?.archiver.stop();
          };
        },
      });
      this.duties.push(entry);
      entry.duty.start();
      // Where another node archives it, the status still names the primary archived now.
      void this.follow(entry);
    }
    this.recheckTimer = setInterval(() => this.recheck(), TOPOLOGY_RECHECK_MS);
    this.recheckTimer.unref();
  }

  /** After a promotion's broadcast: every group's primary is read again, and the archiver switches to a new one. */
  followTopology(): Promise<void> {
    return Promise.all(this.duties.map((entry) => this.follow(entry))).then(() => undefined);
  }

  private recheck(): void {
    const now = Date.now();
    for (const entry of this.duties) {
      if (!entry.holding) continue;
      const streaming = entry.running?.archiver.status().state === "streaming";
      if (now - entry.checkedAt >= (streaming ? STREAMING_TOPOLOGY_RECHECK_MS : TOPOLOGY_RECHECK_MS)) void this.follow(entry);
    }
  }

  private follow(entry: ArchiveDuty): Promise<void> {
    entry.following = entry.following.then(async () => {
      const url = await this.primaryUrlOf(entry);
      if (url === undefined || !entry.holding) return;
      const running = entry.running;
      if (running !== undefined && running.primary === serverOf(url)) return;
      if (running !== undefined) {
        this.options.log.info(`binlog archive of ${entry.server.label}: the primary is now ${serverOf(url)} (was ${running.primary}); archiving it from here on`);
        entry.running = undefined;
        await running.archiver.stop();
      }
      entry.running = await this.archive(entry.server, url).catch((error: Error) => {
        this.options.log.warn(`binlog archive of ${entry.server.label}: cannot archive ${serverOf(url)} yet: ${error.message}`);
        return undefined;
      });
    }).catch((error: unknown) => this.options.log.warn(`binlog archive of ${entry.server.label}: following the topology failed: ${String(error)}`));
    return entry.following;
  }

  /** The URL of the group's primary now, or undefined when the stored topology cannot be read. */
  private async primaryUrlOf(entry: ArchiveDuty): Promise<string | undefined> {
    entry.checkedAt = Date.now();
    const { server } = entry;
    if (this.options.loadTopology === undefined || server.databases.length === 0) return server.url;
    let stored: StoredTopology | undefined;
    try {
      stored = await this.options.loadTopology(server.databases[0]!.name);
    } catch (error) {
      this.options.log.warn(`binlog archive of ${server.label}: the stored topology could not be read: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
    const resolved = resolveTopology({ primaryUrl: server.url, replicaUrls: server.replicaUrls }, stored);
    if (resolved.ignored !== undefined) this.options.log.warn(`binlog archive of ${server.label}: ${resolved.ignored}`);
    entry.primary = serverOf(resolved.urls.primaryUrl);
    return resolved.urls.primaryUrl;
  }

  /** Starts archiving the primary at `url`; a new archive continues from what the other archives hold. */
  private async archive(server: ArchivedServer, url: string): Promise<RunningArchive> {
    const parsed = new URL(url);
    const prefix = archivePrefix(parsed.hostname, Number(parsed.port || "3306"), await serverIdOf(url));
    // The archives of the group's other servers (earlier primaries), not those of other groups.
    const group = [server.url, ...server.replicaUrls].map((each) => {
      const other = new URL(each);
      return serverArchivesPrefix(other.hostname, Number(other.port || "3306"));
    });
    // Storage out of reach: the archive starts with the primary's oldest binary log and is checked from there.
    const { archives } = await readArchiveIndexes(this.options.storage, this.options.key).catch((error: Error) => {
      this.options.log.warn(`binlog archive of ${server.label}: the earlier archives could not be read (${error.message}); the GTID continuity with them is not checked`);
      return { archives: [] };
    });
    const earlier = archives.filter((archive) => archive.prefix !== prefix && group.some((start) => archive.prefix.startsWith(start)));
    const continuesFrom = formatGtidState(newestArchivedGtids(earlier.map((archive) => archive.index)));
    const sink = encryptedArchiveSink(this.options.storage, prefix, this.options.key);
    const archiver = new BinlogArchiver(
      mariadbBinlogPorts({
        url,
        serverId: ARCHIVER_SERVER_ID,
        sink: { put: sink.put, putIndex: (index) => storeArchiveIndex(this.options.storage, prefix, index, this.options.key) },
      }),
      {
        directory: path.join(this.options.dataDir, "binlog-archive", prefix.slice(0, -1).split("/").pop() as string),
        flushIntervalMs: this.options.flushIntervalMs,
        continuesFrom,
        log: this.options.log,
      },
    );
    await archiver.start();
    return { primary: serverOf(url), prefix, archiver };
  }

  async stop(): Promise<void> {
    clearInterval(this.recheckTimer);
    for (const { duty } of this.duties.splice(0)) await duty.stop();
  }

  /** Per group: its primary now, whether this node archives it, and the archiver's status when it does. */
  status(): { server: string; here: boolean; archive?: string; status?: BinlogArchiverStatus; lastError?: string }[] {
    return this.duties.map(({ duty, running, primary }) => ({
      server: running?.primary ?? primary,
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

import type { Transaction } from "kysely";
import { Kysely, Migrator, MysqlDialect, sql } from "kysely";
import { UnavailableError } from "../errors";
import type { Database, DatabaseHealth, DatabaseLogger, Migrations, ReadRoutingStats } from "./database";
import { createMysqlPool, Replica, Server } from "./mysql-server";
import { currentConsistencyKey } from "./read-your-writes";
import type { WriteMarkStore } from "./read-your-writes";
import { nextInRotation, ReplicaLagTracker, RoundRobin } from "./replica-rotation";
import type { ReplicaThresholds } from "./replica-rotation";
import { flavorFromVersion } from "./replication-flavor";
import type { ReplicationFlavor } from "./replication-flavor";
import { resolveTopology } from "./topology";
import type { ServerUrls, StoredTopology } from "./topology";

export interface MysqlDatabaseOptions {
  readonly name: string;
  readonly database: string;
  readonly primaryUrl: string;
  readonly replicaUrls: readonly string[];
  readonly poolSize: number;
  readonly thresholds: ReplicaThresholds;
  readonly probeIntervalMs: number;
  readonly readYourWritesWaitMs: number;
  readonly readYourWritesWindowMs: number;
  readonly writeMarks: WriteMarkStore;
  readonly logger: DatabaseLogger;
  /** What a promotion stored (lib/db/topology.ts); without it the settings' servers are used as they are. */
  readonly loadTopology?: () => Promise<StoredTopology | undefined>;
}

/** While the primary is unreachable, how often the stored topology is read again (in case a promotion's broadcast was missed). */
const TOPOLOGY_RECHECK_MS = 3000;

const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ER_CON_COUNT_ERROR",
  "ER_SERVER_SHUTDOWN",
  "ER_OPTION_PREVENTS_STATEMENT",
]);

/** True when the error means "this server cannot serve now" rather than "this query is wrong". */
export function isConnectionError(error: unknown): boolean {
  // Duck-typed: errors from Node's net module may come from another realm (instanceof Error fails there).
  if (typeof error !== "object" || error === null) return false;
  const { code, fatal } = error as { code?: unknown; fatal?: unknown };
  return fatal === true || (typeof code === "string" && CONNECTION_ERROR_CODES.has(code));
}

const FALL_BACK_TO_PRIMARY = Symbol("fall back to primary");

/** A MariaDB/MySQL database with one primary and zero or more replicas. */
export class MysqlDatabase<DB> implements Database<DB> {
  readonly name: string;
  private primary: Server<DB>;
  private replicas: Replica<DB>[];
  private lag: ReplicaLagTracker;
  private topologyCheckedAt = 0;
  private refreshing: Promise<boolean> | undefined;
  private readonly roundRobin = new RoundRobin<Replica<DB>>();
  private flavor: ReplicationFlavor | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private stats = { replicaReads: 0, primaryReads: 0, readYourWritesFallbacks: 0 };

  constructor(private readonly options: MysqlDatabaseOptions) {
    this.name = options.name;
    this.primary = new Server<DB>(options.primaryUrl, options.database, options.poolSize);
    this.replicas = options.replicaUrls.map((url) => new Replica<DB>(url, options.database, options.poolSize));
    this.lag = new ReplicaLagTracker(this.replicas.map((replica) => replica.label));
  }

  /** Creates the database if needed and learns the server flavor; throws a connection error while the primary is unreachable. */
  async connect(): Promise<void> {
    await this.refreshTopology();
    const admin = new Kysely<unknown>({
      dialect: new MysqlDialect({ pool: createMysqlPool(this.primary.url, undefined, 1) }),
    });
    try {
      await sql`create database if not exists ${sql.id(this.options.database)} character set utf8mb4 collate utf8mb4_bin`.execute(admin);
      const { rows } = await sql<{ version: string }>`select version() as version`.execute(admin);
      this.flavor = flavorFromVersion(rows[0]?.version ?? "");
    } finally {
      await admin.destroy();
    }
    this.primary.markReachable();
    await this.probe();
    this.probeTimer = setInterval(() => void this.probe(), this.options.probeIntervalMs);
    this.probeTimer.unref();
  }

  async read<T>(query: (db: Kysely<DB>) => Promise<T>): Promise<T> {
    const key = currentConsistencyKey();
    let mark: string | undefined;
    let canUseReplica = true;
    if (key !== undefined) {
      try {
        mark = await this.options.writeMarks.recall(this.markKey(key));
      } catch (error) {
        // Without the mark we cannot know what this reader has written: the primary is safe.
        this.options.logger.warn(`read-your-writes marks unavailable, reading from the primary: ${String(error)}`);
        canUseReplica = false;
      }
    }
    const replica = canUseReplica ? this.roundRobin.pick(this.replicas.filter((candidate) => candidate.inRotation)) : undefined;
    if (replica) {
      try {
        const result = await this.readOnReplica(replica, mark, query);
        if (result !== FALL_BACK_TO_PRIMARY) {
          this.stats.replicaReads++;
          return result;
        }
        this.stats.readYourWritesFallbacks++;
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        replica.markUnreachable(error);
        this.options.logger.warn(`${this.name}: replica ${replica.label} failed a read and left the rotation: ${replica.error}`);
      }
    }
    this.stats.primaryReads++;
    return this.onPrimary("read", (primary) => query(primary.db));
  }

  async readLatest<T>(query: (db: Kysely<DB>) => Promise<T>): Promise<T> {
    if (this.primary.reachable) {
      try {
        const result = await this.onPrimary("read", (primary) => query(primary.db));
        this.stats.primaryReads++;
        return result;
      } catch (error) {
        if (!(error instanceof UnavailableError)) throw error;
      }
    }
    return this.read(query);
  }

  async write<T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    const key = currentConsistencyKey();
    const { result, position } = await this.onPrimary("write", (primary) =>
      primary.db.connection().execute(async (connection) => {
        const result = await connection.transaction().execute(work);
        const position = key === undefined ? undefined : await this.requireFlavor().lastWritePosition(connection as Kysely<unknown>);
        return { result, position };
      }),
    );
    if (key !== undefined && position) {
      try {
        await this.options.writeMarks.remember(this.markKey(key), position, this.options.readYourWritesWindowMs);
      } catch (error) {
        this.options.logger.warn(`could not remember a write position for read-your-writes: ${String(error)}`);
      }
    }
    return result;
  }

  async migrate(migrations: Migrations): Promise<void> {
    const lockName = `shoal_migrate_${this.options.database}`;
    await this.primary.db.connection().execute(async (connection) => {
      const { rows } = await sql<{ acquired: number | null }>`select get_lock(${lockName}, 120) as acquired`.execute(connection);
      if (Number(rows[0]?.acquired) !== 1) throw new Error(`${this.name}: timed out waiting for the migration lock`);
      try {
        const migrator = new Migrator({ db: connection, provider: { getMigrations: async () => ({ ...migrations }) } });
        const { error, results } = await migrator.migrateToLatest();
        for (const result of results ?? []) {
          if (result.status === "Success") this.options.logger.info(`${this.name}: applied migration ${result.migrationName}`);
        }
        if (error) throw error;
      } finally {
        await sql`select release_lock(${lockName})`.execute(connection);
      }
    });
  }

  /** Reads the stored topology and, when it names other servers than those in use, switches to them without a restart. */
  async refreshTopology(): Promise<void> {
    this.refreshing ??= this.reloadTopology().finally(() => {
      this.refreshing = undefined;
    });
    if (!(await this.refreshing) || !this.flavor) return;
    // A probe already under way looks at the old servers; the next one sees the new.
    await this.probing;
    await this.probe();
  }

  health(): DatabaseHealth {
    const replicas = this.replicas.map((replica) => replica.health());
    const readable = this.primary.reachable || replicas.some((replica) => replica.inRotation);
    const allGood = this.primary.reachable && replicas.every((replica) => replica.inRotation);
    return {
      status: !readable ? "down" : allGood ? "ok" : "degraded",
      engine: this.flavor?.name ?? "mariadb",
      database: this.options.database,
      primary: this.primary.health(),
      replicas,
    };
  }

  routingStats(): ReadRoutingStats {
    return { ...this.stats };
  }

  async close(): Promise<void> {
    if (this.probeTimer) clearInterval(this.probeTimer);
    await this.probing;
    await Promise.all([this.primary, ...this.replicas].map((server) => server.db.destroy()));
  }

  /** True when it switched servers. */
  private async reloadTopology(): Promise<boolean> {
    this.topologyCheckedAt = Date.now();
    if (!this.options.loadTopology) return false;
    const configured = { primaryUrl: this.options.primaryUrl, replicaUrls: this.options.replicaUrls };
    let stored: StoredTopology | undefined;
    try {
      stored = await this.options.loadTopology();
    } catch (error) {
      this.options.logger.warn(`${this.name}: the stored topology could not be read, keeping ${this.primary.label} as primary: ${String(error)}`);
      return false;
    }
    const resolved = resolveTopology(configured, stored);
    if (resolved.ignored !== undefined) this.options.logger.warn(`${this.name}: ${resolved.ignored}`);
    const inUse = [this.primary.url, ...this.replicas.map((replica) => replica.url)].join(" ");
    if ([resolved.urls.primaryUrl, ...resolved.urls.replicaUrls].join(" ") === inUse) return false;
    this.switchTo(resolved.urls);
    const replicas = this.replicas.map((replica) => replica.label).join(", ") || "none";
    this.options.logger.info(`${this.name}: primary is now ${this.primary.label}, replicas ${replicas} (${resolved.source} topology)`);
    return true;
  }

  private switchTo(urls: ServerUrls): void {
    const previousPrimary = this.primary;
    const previousReplicas = new Map(this.replicas.map((replica) => [replica.url, replica]));
    this.primary = new Server<DB>(urls.primaryUrl, this.options.database, this.options.poolSize);
    this.replicas = urls.replicaUrls.map((url) => {
      const kept = previousReplicas.get(url);
      previousReplicas.delete(url);
      return kept ?? new Replica<DB>(url, this.options.database, this.options.poolSize);
    });
    this.lag = new ReplicaLagTracker(this.replicas.map((replica) => replica.label));
    // Queries already running on the old pools finish or fail on their own; the pools then close.
    for (const server of [previousPrimary, ...previousReplicas.values()]) {
      void server.db.destroy().catch(() => undefined);
    }
  }

  private markKey(consistencyKey: string): string {
    return `${this.options.database}:${consistencyKey}`;
  }

  private requireFlavor(): ReplicationFlavor {
    if (!this.flavor) throw new UnavailableError(`The ${this.name} database is still starting.`);
    return this.flavor;
  }

  private async readOnReplica<T>(
    replica: Replica<DB>,
    mark: string | undefined,
    query: (db: Kysely<DB>) => Promise<T>,
  ): Promise<T | typeof FALL_BACK_TO_PRIMARY> {
    if (mark === undefined) return query(replica.db);
    const flavor = this.requireFlavor();
    return replica.db.connection().execute(async (connection) => {
      const caughtUp = await flavor.waitForPosition(connection as Kysely<unknown>, mark, this.options.readYourWritesWaitMs);
      return caughtUp ? query(connection) : FALL_BACK_TO_PRIMARY;
    });
  }

  private async onPrimary<T>(purpose: "read" | "write", work: (primary: Server<DB>) => Promise<T>): Promise<T> {
    // The server at the start: a promotion may switch this.primary while the work runs.
    const primary = this.primary;
    // Fail fast while the probe knows the primary is down, instead of every request waiting on a connect timeout.
    if (!primary.reachable && purpose === "write") {
      throw new UnavailableError(`The ${this.name} database cannot accept changes right now; try again shortly.`);
    }
    try {
      const result = await work(primary);
      return result;
    } catch (error) {
      if (!isConnectionError(error)) throw error;
      primary.markUnreachable(error);
      this.options.logger.warn(`${this.name}: primary ${primary.label} failed a ${purpose}: ${primary.error}`);
      throw new UnavailableError(
        purpose === "write"
          ? `The ${this.name} database cannot accept changes right now; try again shortly.`
          : `The ${this.name} database cannot be read right now; try again shortly.`,
      );
    }
  }

  private probe(): Promise<void> {
    this.probing ??= this.probeOnce().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  private async probeOnce(): Promise<void> {
    const flavor = this.flavor;
    if (!flavor) return;
    // What is in use now: a promotion may switch servers while this probe waits on them.
    const { primary, replicas, lag } = this;
    const timeoutMs = Math.max(1000, this.options.probeIntervalMs * 2);
    const wasReachable = primary.reachable;
    try {
      const position = await withTimeout(flavor.serverPosition(primary.db as Kysely<unknown>), timeoutMs);
      primary.markReachable();
      lag.observePrimary(position, Date.now());
      if (!wasReachable) this.options.logger.info(`${this.name}: primary ${primary.label} is reachable`);
    } catch (error) {
      primary.markUnreachable(error);
      if (wasReachable) this.options.logger.warn(`${this.name}: primary ${primary.label} is unreachable: ${primary.error}`);
      if (Date.now() - this.topologyCheckedAt >= TOPOLOGY_RECHECK_MS) {
        this.refreshing ??= this.reloadTopology().finally(() => {
          this.refreshing = undefined;
        });
        if (await this.refreshing) return this.probeOnce();
      }
    }
    await Promise.all(replicas.map((replica) => this.probeReplica(flavor, replica, lag, timeoutMs)));
  }

  private async probeReplica(flavor: ReplicationFlavor, replica: Replica<DB>, lag: ReplicaLagTracker, timeoutMs: number): Promise<void> {
    const positions = lag.positionsToCheck(replica.label);
    try {
      const applied = await withTimeout(
        positions.length > 0
          ? flavor.hasApplied(replica.db as Kysely<unknown>, positions)
          : sql`select 1`.execute(replica.db).then(() => []),
        timeoutMs,
      );
      replica.markReachable();
      replica.lagSeconds = lag.recordApplied(replica.label, applied, Date.now());
    } catch (error) {
      replica.markUnreachable(error);
    }
    const wasInRotation = replica.inRotation;
    replica.inRotation = nextInRotation(wasInRotation, replica, this.options.thresholds);
    if (wasInRotation !== replica.inRotation) {
      const why = replica.reachable ? `lag ${replica.lagSeconds?.toFixed(1)} s` : `unreachable: ${replica.error}`;
      const message = `${this.name}: replica ${replica.label} ${replica.inRotation ? "joined" : "left"} the read rotation (${why})`;
      if (replica.inRotation) this.options.logger.info(message);
      else this.options.logger.warn(message);
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

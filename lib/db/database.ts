import type { Kysely, Migration, Transaction } from "kysely";

export type HealthStatus = "ok" | "degraded" | "down";

export interface ServerHealth {
  /** host:port, never credentials. */
  readonly server: string;
  readonly reachable: boolean;
  readonly error?: string;
}

export interface ReplicaHealth extends ServerHealth {
  readonly lagSeconds: number | null;
  readonly inRotation: boolean;
}

export interface DatabaseHealth {
  /** down: cannot serve reads; degraded: reads work but writes or some replicas do not. */
  readonly status: HealthStatus;
  readonly engine: "sqlite" | "mariadb" | "mysql";
  readonly database: string;
  readonly primary: ServerHealth;
  readonly replicas: readonly ReplicaHealth[];
}

export interface ReadRoutingStats {
  readonly replicaReads: number;
  readonly primaryReads: number;
  /** Reads sent to the primary because no replica reached the reader's own last write in time. */
  readonly readYourWritesFallbacks: number;
}

export type Migrations = Readonly<Record<string, Migration>>;

/**
 * One logical database. Repositories say only whether they read or write; where that
 * runs (primary, which replica) is decided here.
 */
export interface Database<DB> {
  readonly name: string;
  /** Connects, creating the database if needed; throws a connection error while the primary is unreachable. */
  connect(): Promise<void>;
  /** Runs on a healthy replica when there is one, else on the primary; sees the caller's own recent writes. */
  read<T>(query: (db: Kysely<DB>) => Promise<T>): Promise<T>;
  /**
   * Runs on the primary, so it sees every committed write: for decisions that must not act
   * on a lagging copy (does this session still exist?). While the primary is down it falls
   * back to a replica rather than failing.
   */
  readLatest<T>(query: (db: Kysely<DB>) => Promise<T>): Promise<T>;
  /** Runs in one transaction on the primary. Throws UnavailableError when the primary is down. */
  write<T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T>;
  /** Brings the schema up to date; safe when several nodes do it at once. */
  migrate(migrations: Migrations): Promise<void>;
  /** Follows a promotion: re-reads which server is primary and switches to it without a restart. */
  refreshTopology(): Promise<void>;
  health(): DatabaseHealth;
  routingStats(): ReadRoutingStats;
  close(): Promise<void>;
}

export interface DatabaseLogger {
  info(message: string): void;
  warn(message: string): void;
}

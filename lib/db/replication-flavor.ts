import type { Kysely } from "kysely";
import { sql } from "kysely";

/**
 * The only place MariaDB and MySQL 8 differ for us: how a replication position is read,
 * compared and waited for. MariaDB positions are GTID lists (`0-1-42`); MySQL's are
 * GTID sets (`uuid:1-42`).
 */
export interface ReplicationFlavor {
  readonly name: "mariadb" | "mysql";
  /** The position that includes every transaction committed on this server so far. */
  serverPosition(db: Kysely<unknown>): Promise<string>;
  /** The position of the last transaction this connection committed (or a later one). */
  lastWritePosition(connection: Kysely<unknown>): Promise<string>;
  /** For each position, whether this replica has already applied it; never blocks. */
  hasApplied(replica: Kysely<unknown>, positions: readonly string[]): Promise<boolean[]>;
  /** Waits up to timeoutMs for this replica to apply the position; true when it has. */
  waitForPosition(replica: Kysely<unknown>, position: string, timeoutMs: number): Promise<boolean>;
  /** Every transaction this server has applied, its own or replicated: the position of a snapshot taken on it. */
  appliedPosition(db: Kysely<unknown>): Promise<string>;
  /** The logical dump tool and its options for a consistent dump of one database (lib/backups), and the client that loads one. */
  readonly dump: { readonly program: string; readonly options: readonly string[]; readonly client: string };
}

async function scalar<T>(db: Kysely<unknown>, query: ReturnType<typeof sql<{ value: T }>>): Promise<T> {
  const { rows } = await query.execute(db);
  const row = rows[0];
  if (!row) throw new Error("query returned no row");
  return row.value;
}

const mariadb: ReplicationFlavor = {
  name: "mariadb",
  serverPosition: (db) => scalar<string>(db, sql<{ value: string }>`select @@global.gtid_binlog_pos as value`),
  lastWritePosition: (connection) => scalar<string>(connection, sql<{ value: string }>`select @@last_gtid as value`),
  async hasApplied(replica, positions) {
    // MASTER_GTID_WAIT with a zero timeout only tests: 0 when applied, -1 when not.
    const results = await Promise.all(
      positions.map((position) =>
        scalar<number | string>(replica, sql<{ value: number | string }>`select master_gtid_wait(${position}, 0) as value`),
      ),
    );
    return results.map((value) => Number(value) === 0);
  },
  async waitForPosition(replica, position, timeoutMs) {
    if (position === "") return true;
    const value = await scalar<number | string>(
      replica,
      sql<{ value: number | string }>`select master_gtid_wait(${position}, ${timeoutMs / 1000}) as value`,
    );
    return Number(value) === 0;
  },
  appliedPosition: (db) => scalar<string>(db, sql<{ value: string }>`select @@global.gtid_current_pos as value`),
  dump: {
    program: "mariadb-dump",
    options: ["--single-transaction", "--gtid", "--routines", "--triggers", "--events", "--hex-blob"],
    client: "mariadb",
  },
};

const mysql: ReplicationFlavor = {
  name: "mysql",
  serverPosition: (db) => scalar<string>(db, sql<{ value: string }>`select @@global.gtid_executed as value`),
  // MySQL has no per-session "last GTID" without session tracking; the server's whole set includes it.
  lastWritePosition: (connection) => scalar<string>(connection, sql<{ value: string }>`select @@global.gtid_executed as value`),
  async hasApplied(replica, positions) {
    const results = await Promise.all(
      positions.map((position) =>
        scalar<number | string>(replica, sql<{ value: number | string }>`select gtid_subset(${position}, @@global.gtid_executed) as value`),
      ),
    );
    return results.map((value) => Number(value) === 1);
  },
  async waitForPosition(replica, position, timeoutMs) {
    if (position === "") return true;
    const value = await scalar<number | string>(
      replica,
      sql<{ value: number | string }>`select wait_for_executed_gtid_set(${position}, ${timeoutMs / 1000}) as value`,
    );
    return Number(value) === 0;
  },
  appliedPosition: (db) => scalar<string>(db, sql<{ value: string }>`select @@global.gtid_executed as value`),
  dump: {
    program: "mysqldump",
    // The GTID set goes into the manifest; as a comment it does not stop loading into a server with its own history.
    options: ["--single-transaction", "--set-gtid-purged=COMMENTED", "--routines", "--triggers", "--events", "--hex-blob"],
    client: "mysql",
  },
};

/** Chooses the flavor from `SELECT VERSION()`, e.g. `10.11.6-MariaDB-0+deb12u1`. */
export function flavorFromVersion(version: string): ReplicationFlavor {
  return /mariadb/i.test(version) ? mariadb : mysql;
}

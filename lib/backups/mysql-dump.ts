import { spawn } from "node:child_process";
import type { ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { Transform } from "node:stream";
import { Kysely, MysqlDialect, sql } from "kysely";
import { createPool } from "mysql2";
import { flavorFromVersion } from "../db/replication-flavor";
import type { ReplicationFlavor } from "../db/replication-flavor";
import { summariseMysql } from "./table-checksums";
import type { DatabaseSummary } from "./table-checksums";

/** A MariaDB/MySQL server as a mysql:// URL; the database named apart. */
export interface MysqlServer {
  readonly url: string;
}

export function serverLabel(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || "3306"}`;
}

export function openServer(url: string, database: string | undefined, connections: number): Kysely<unknown> {
  const parsed = new URL(url);
  const pool = createPool({
    host: parsed.hostname,
    port: Number(parsed.port || 3306),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database,
    connectionLimit: connections,
    connectTimeout: 5000,
    supportBigNumbers: true,
    bigNumberStrings: true,
    multipleStatements: false,
  });
  return new Kysely<unknown>({ dialect: new MysqlDialect({ pool }) });
}

/** Connection options for the command-line tools; the password goes in the environment, never on the command line. */
export function clientInvocation(url: string): { args: string[]; env: NodeJS.ProcessEnv } {
  const parsed = new URL(url);
  return {
    args: [`--host=${parsed.hostname}`, `--port=${parsed.port || "3306"}`, `--user=${decodeURIComponent(parsed.username)}`, "--protocol=TCP"],
    env: { ...process.env, MYSQL_PWD: decodeURIComponent(parsed.password) },
  };
}

export type ToolProcess = ChildProcessByStdio<Writable | null, Readable | null, Readable>;

/** Resolves when the tool exits with 0; rejects with the end of its error output otherwise. */
export function exitOf(child: ToolProcess, program: string): Promise<void> {
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-2000);
  });
  return new Promise((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`${program} could not start: ${error.message}`)));
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${program} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || "no message"}`));
    });
  });
}

/** Output the dump writes only once its own snapshot transaction is open: the first table's structure. */
const SNAPSHOT_OPEN_MARKER = "-- Table structure for table";

/** Passes the dump through and notices when its snapshot is open (or it ended: a database without tables). */
class SnapshotWatch extends Transform {
  readonly opened: Promise<void>;
  private open!: () => void;
  private tail = "";
  private seen = false;

  constructor() {
    super();
    this.opened = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    if (!this.seen) {
      const text = this.tail + chunk.toString("latin1");
      this.seen = text.includes(SNAPSHOT_OPEN_MARKER);
      if (this.seen) this.open();
      this.tail = text.slice(-SNAPSHOT_OPEN_MARKER.length);
    }
    callback(null, chunk);
  }

  override _flush(callback: () => void): void {
    this.open();
    callback();
  }
}

export interface MysqlDump {
  /** The SQL text, to be consumed at once (nothing is buffered beyond the stream's own). */
  readonly sql: Readable;
  readonly flavor: ReplicationFlavor;
  readonly serverVersion: string;
  readonly gtidPosition: string;
  /** Row counts, checksums and migrations in the dump's snapshot; computed while the dump streams. */
  readonly summary: Promise<DatabaseSummary>;
  /** Settles when the dump tool has exited (rejects when it failed) and the snapshot connection is closed. */
  readonly finished: Promise<void>;
}

/**
 * Starts a consistent dump of one database, with its counts and checksums taken in the very same snapshot.
 *
 * mariadb-dump opens its own snapshot transaction, so a second connection cannot simply share it. Both are
 * therefore opened while a global read lock (FLUSH TABLES WITH READ LOCK) holds every commit back: our
 * connection starts its consistent snapshot and reads the GTID position, the dump starts, and the lock is
 * released as soon as the dump has written its first table structure, which it does only after its
 * snapshot is open. No transaction can commit in between, so both snapshots see the same data. Writers wait
 * for that moment only (typically well under a second); the counting and hashing then run inside our
 * snapshot while the dump streams. Needs the RELOAD privilege (for the lock) besides read access.
 */
export async function startMysqlDump(server: MysqlServer, database: string, lockWaitSeconds = 30): Promise<MysqlDump> {
  const db = openServer(server.url, database, 2);
  let ready: (value: { dump: Omit<MysqlDump, "summary" | "finished">; child: ToolProcess }) => void;
  let failed: (error: unknown) => void;
  const started = new Promise<{ dump: Omit<MysqlDump, "summary" | "finished">; child: ToolProcess }>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  let summaryResolve: (summary: DatabaseSummary) => void;
  let summaryReject: (error: unknown) => void;
  const summary = new Promise<DatabaseSummary>((resolve, reject) => {
    summaryResolve = resolve;
    summaryReject = reject;
  });
  summary.catch(() => undefined);

  const snapshotWork = db
    .connection()
    .execute(async (snapshot) => {
      const version = (await sql<{ version: string }>`select version() as version`.execute(snapshot)).rows[0]?.version ?? "";
      const flavor = flavorFromVersion(version);
      await sql`set session transaction isolation level repeatable read`.execute(snapshot);
      let child: ToolProcess | undefined;
      let gtidPosition = "";
      let watch: SnapshotWatch | undefined;
      await db.connection().execute(async (lock) => {
        await sql`set session lock_wait_timeout = ${lockWaitSeconds}`.execute(lock);
        await sql`flush tables with read lock`.execute(lock);
        try {
          await sql`start transaction with consistent snapshot`.execute(snapshot);
          gtidPosition = await flavor.appliedPosition(snapshot);
          const { args, env } = clientInvocation(server.url);
          child = spawn(flavor.dump.program, [...args, ...flavor.dump.options, database], { env, stdio: ["ignore", "pipe", "pipe"] });
          watch = new SnapshotWatch();
          child.stdout?.pipe(watch);
          child.stdout?.on("error", (error) => watch?.destroy(error));
          const exited = new Promise<void>((resolve) => child?.once("close", () => resolve()));
          ready({ dump: { sql: watch, flavor, serverVersion: version, gtidPosition }, child });
          await Promise.race([watch.opened, exited]);
        } finally {
          await sql`unlock tables`.execute(lock);
        }
      });
      try {
        summaryResolve(await summariseMysql(snapshot, database));
      } catch (error) {
        summaryReject(error);
      } finally {
        await sql`rollback`.execute(snapshot);
      }
    })
    .catch((error: unknown) => {
      failed(error);
      summaryReject(error);
    });

  const { dump, child } = await started;
  const exited = exitOf(child, dump.flavor.dump.program);
  const finished = Promise.all([exited, snapshotWork]).then(
    () => db.destroy(),
    async (error: unknown) => {
      await db.destroy();
      throw error;
    },
  );
  exited.catch((error: unknown) => dump.sql.destroy(error as Error));
  return { ...dump, summary, finished };
}

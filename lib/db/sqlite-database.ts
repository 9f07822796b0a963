import path from "node:path";
import SqliteDriver from "better-sqlite3";
import type { Transaction } from "kysely";
import { Kysely, Migrator, SqliteDialect, sql } from "kysely";
import { ensurePrivateDirectory, ensurePrivateFile, formatMode } from "../private-files";
import type { Database, DatabaseHealth, DatabaseLogger, Migrations, ReadRoutingStats } from "./database";

/** The embedded database: one SQLite file, which is its own primary and has no replicas. */
export class SqliteDatabase<DB> implements Database<DB> {
  readonly name: string;
  private readonly db: Kysely<DB>;
  private reads = 0;

  constructor(
    name: string,
    private readonly file: string,
    private readonly logger: DatabaseLogger,
  ) {
    this.name = name;
    // Accounts, sessions and the catalogue: owner-only, the database file made before SQLite opens it
    // (SQLite would make it 0644, and its -wal and -shm files take the database file's mode).
    if (file !== ":memory:") {
      const directory = path.dirname(file);
      const { tightenedFrom } = ensurePrivateDirectory(directory);
      if (tightenedFrom !== undefined) logger.warn(`${directory} was open to other accounts (mode ${formatMode(tightenedFrom)}); it is now owner-only (0700)`);
      ensurePrivateFile(file, { create: true });
      for (const companion of [`${file}-wal`, `${file}-shm`, `${file}-journal`]) ensurePrivateFile(companion, { create: false });
    }
    const driver = new SqliteDriver(file);
    driver.pragma("journal_mode = WAL");
    driver.pragma("busy_timeout = 5000");
    driver.pragma("foreign_keys = ON");
    this.db = new Kysely<DB>({ dialect: new SqliteDialect({ database: driver }) });
  }

  async connect(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  /** One file, no replicas: nothing to follow. */
  async refreshTopology(): Promise<void> {}

  async read<T>(query: (db: Kysely<DB>) => Promise<T>): Promise<T> {
    this.reads++;
    return query(this.db);
  }

  readLatest<T>(query: (db: Kysely<DB>) => Promise<T>): Promise<T> {
    return this.read(query);
  }

  async write<T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(work);
  }

  async migrate(migrations: Migrations): Promise<void> {
    const migrator = new Migrator({ db: this.db, provider: { getMigrations: async () => ({ ...migrations }) } });
    const { error, results } = await migrator.migrateToLatest();
    for (const result of results ?? []) {
      if (result.status === "Success") this.logger.info(`${this.name}: applied migration ${result.migrationName}`);
    }
    if (error) throw error;
  }

  health(): DatabaseHealth {
    return {
      status: "ok",
      engine: "sqlite",
      database: this.file,
      primary: { server: "local file", reachable: true },
      replicas: [],
    };
  }

  routingStats(): ReadRoutingStats {
    return { replicaReads: 0, primaryReads: this.reads, readYourWritesFallbacks: 0 };
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}

import type { Kysely } from "kysely";
import { MysqlAdapter } from "kysely";

/**
 * - The public feed lists ready items only: its index becomes (visibility, status, created_at, id),
 *   so the feed is read in order from the index, skipping nothing, whatever number of items are
 *   still being processed. It replaces (visibility, created_at, id), which nothing else reads.
 * - Tombstones are swept once past their retention: an index on deleted_at finds the old ones.
 *
 * MariaDB/MySQL commit DDL statement by statement (and MySQL has no CREATE INDEX IF NOT EXISTS),
 * so each step is skipped when it is already done.
 */

const FEED_INDEX = "media_visibility_status_created";
const OLD_FEED_INDEX = "media_visibility_created";
const TOMBSTONE_AGE_INDEX = "media_tombstones_deleted";

/** DROP INDEX needs `ON <table>` on MariaDB/MySQL and refuses it on SQLite. */
async function dropIndex(db: Kysely<unknown>, name: string, table: string): Promise<void> {
  const builder = db.schema.dropIndex(name);
  await (db.getExecutor().adapter instanceof MysqlAdapter ? builder.on(table) : builder.ifExists()).execute();
}

async function ignoring(pattern: RegExp, step: () => Promise<void>): Promise<void> {
  try {
    await step();
  } catch (error) {
    if (!pattern.test(String((error as Error).message))) throw error;
  }
}

const ALREADY_THERE = /already exists|Duplicate key name/i;
const ALREADY_GONE = /check that (column\/key|it) exists|no such index/i;

export async function up(db: Kysely<unknown>): Promise<void> {
  // The new index first, then the old one goes: the feed is never without an index.
  await ignoring(ALREADY_THERE, () => db.schema.createIndex(FEED_INDEX).on("media").columns(["visibility", "status", "created_at", "id"]).execute());
  await ignoring(ALREADY_GONE, () => dropIndex(db, OLD_FEED_INDEX, "media"));
  await ignoring(ALREADY_THERE, () => db.schema.createIndex(TOMBSTONE_AGE_INDEX).on("media_tombstones").column("deleted_at").execute());
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, TOMBSTONE_AGE_INDEX, "media_tombstones");
  await db.schema.createIndex(OLD_FEED_INDEX).on("media").columns(["visibility", "created_at", "id"]).execute();
  await dropIndex(db, FEED_INDEX, "media");
}

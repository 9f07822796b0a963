import type { Kysely } from "kysely";
import { MysqlAdapter } from "kysely";

/**
 * The popular feed (GET /api/media?scope=public&sort=popular) reads public, ready items by their
 * all-time view count: the index (visibility, status, views, id) gives them in that order, so a page
 * is read from the index whatever the number of items.
 *
 * MariaDB/MySQL commit DDL statement by statement (and MySQL has no CREATE INDEX IF NOT EXISTS),
 * so the step is skipped when it is already done.
 */

const POPULAR_INDEX = "media_public_popular";
const ALREADY_THERE = /already exists|Duplicate key name/i;

export async function up(db: Kysely<unknown>): Promise<void> {
  try {
    await db.schema.createIndex(POPULAR_INDEX).on("media").columns(["visibility", "status", "views", "id"]).execute();
  } catch (error) {
    if (!ALREADY_THERE.test(String((error as Error).message))) throw error;
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // DROP INDEX needs `ON <table>` on MariaDB/MySQL and refuses it on SQLite.
  const builder = db.schema.dropIndex(POPULAR_INDEX);
  await (db.getExecutor().adapter instanceof MysqlAdapter ? builder.on("media") : builder.ifExists()).execute();
}

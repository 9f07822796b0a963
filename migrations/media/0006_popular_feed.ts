import type { Kysely } from "kysely";
import { dropIndex, unlessThere } from "../steps";

/**
 * The popular feed (GET /api/media?scope=public&sort=popular) reads public, ready items by their
 * all-time view count: the index (visibility, status, views, id) gives them in that order, so a page
 * is read from the index whatever the number of items.
 *
 * MariaDB/MySQL commit DDL statement by statement (and MySQL has no CREATE INDEX IF NOT EXISTS),
 * so the step is skipped when it is already done.
 */

const POPULAR_INDEX = "media_public_popular";

export async function up(db: Kysely<unknown>): Promise<void> {
  await unlessThere(() => db.schema.createIndex(POPULAR_INDEX).on("media").columns(["visibility", "status", "views", "id"]).execute());
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, POPULAR_INDEX, "media");
}

import type { Kysely } from "kysely";
import { dropIndex, unlessGone, unlessThere } from "../steps";

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

export async function up(db: Kysely<unknown>): Promise<void> {
  // The new index first, then the old one goes: the feed is never without an index.
  await unlessThere(() => db.schema.createIndex(FEED_INDEX).on("media").columns(["visibility", "status", "created_at", "id"]).execute());
  await unlessGone(() => dropIndex(db, OLD_FEED_INDEX, "media"));
  await unlessThere(() => db.schema.createIndex(TOMBSTONE_AGE_INDEX).on("media_tombstones").column("deleted_at").execute());
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, TOMBSTONE_AGE_INDEX, "media_tombstones");
  await db.schema.createIndex(OLD_FEED_INDEX).on("media").columns(["visibility", "created_at", "id"]).execute();
  await dropIndex(db, FEED_INDEX, "media");
}

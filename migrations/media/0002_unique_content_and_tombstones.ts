import type { Kysely } from "kysely";
import { dropIndex, unlessGone, unlessThere } from "../steps";

/**
 * - One item per owner and content: (owner_id, sha256) becomes UNIQUE, which is what makes
 *   duplicate detection safe when two uploads of the same bytes finish at once.
 * - The client's declared type and file name are recorded next to the sniffed type.
 * - Tombstones of deleted items (a repeated DELETE by the owner answers 204; quota still owed).
 *
 * MariaDB/MySQL commit DDL statement by statement, so a failure half-way leaves the
 * earlier steps applied: each step is written to be skipped when it is already done.
 */

const OLD_INDEX = "media_owner_sha256";
const UNIQUE_INDEX = "media_owner_sha256_unique";

export async function up(db: Kysely<unknown>): Promise<void> {
  await unlessThere(() => db.schema.alterTable("media").addColumn("declared_mime", "varchar(100)").execute());
  await unlessThere(() => db.schema.alterTable("media").addColumn("original_name", "varchar(255)").execute());

  await db.schema
    .createTable("media_tombstones")
    .ifNotExists()
    .addColumn("id", "varchar(26)", (col) => col.primaryKey())
    .addColumn("owner_id", "varchar(26)", (col) => col.notNull())
    .addColumn("bytes", "bigint", (col) => col.notNull())
    .addColumn("quota_released_at", "bigint")
    .addColumn("deleted_at", "bigint", (col) => col.notNull())
    .execute();

  // The unique index first, then the old one goes: there is never a moment without an index on (owner_id, sha256).
  await unlessThere(() => db.schema.createIndex(UNIQUE_INDEX).on("media").columns(["owner_id", "sha256"]).unique().execute());
  await unlessGone(() => dropIndex(db, OLD_INDEX, "media"));
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex(OLD_INDEX).on("media").columns(["owner_id", "sha256"]).execute();
  await dropIndex(db, UNIQUE_INDEX, "media");
  await db.schema.dropTable("media_tombstones").ifExists().execute();
  await db.schema.alterTable("media").dropColumn("original_name").execute();
  await db.schema.alterTable("media").dropColumn("declared_mime").execute();
}

import type { Kysely } from "kysely";
import { unlessThere } from "../steps";

/**
 * View counts and processing times, for owners and the site's statistics:
 * - media.views / media.unique_viewers: running totals, shown to the owner;
 * - media_view_hours: views and new unique viewers per item per hour (the snapshots add them up);
 * - media_view_flushes: the batches already applied, so that a batch applied twice (a node that
 *   stopped between applying and deleting it) counts once;
 * - media.processing_started_at / finished_at: when the last attempt started and the item became
 *   ready or failed (processing time per kind, failures per period).
 */

export async function up(db: Kysely<unknown>): Promise<void> {
  // MariaDB commits DDL statement by statement: each step is skipped when a partial run already did it.
  for (const [name, type] of [
    ["views", "bigint"],
    ["unique_viewers", "bigint"],
  ] as const) {
    await unlessThere(() => db.schema.alterTable("media").addColumn(name, type, (col) => col.notNull().defaultTo(0)).execute());
  }
  for (const name of ["processing_started_at", "finished_at"]) {
    await unlessThere(() => db.schema.alterTable("media").addColumn(name, "bigint").execute());
  }
  await unlessThere(() => db.schema.createIndex("media_created").on("media").column("created_at").execute());
  await unlessThere(() => db.schema.createIndex("media_finished").on("media").column("finished_at").execute());
  await unlessThere(() => db.schema.createIndex("media_owner_bytes").on("media").columns(["owner_id", "bytes"]).execute());

  await db.schema
    .createTable("media_view_hours")
    .ifNotExists()
    .addColumn("media_id", "varchar(21)", (col) => col.notNull())
    .addColumn("hour", "bigint", (col) => col.notNull())
    .addColumn("views", "bigint", (col) => col.notNull())
    .addColumn("unique_viewers", "bigint", (col) => col.notNull())
    .addPrimaryKeyConstraint("media_view_hours_pk", ["media_id", "hour"])
    .execute();
  await unlessThere(() => db.schema.createIndex("media_view_hours_hour").on("media_view_hours").columns(["hour", "media_id"]).execute());

  await db.schema
    .createTable("media_view_flushes")
    .ifNotExists()
    .addColumn("id", "varchar(64)", (col) => col.primaryKey())
    .addColumn("applied_at", "bigint", (col) => col.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("media_view_flushes").ifExists().execute();
  await db.schema.dropTable("media_view_hours").ifExists().execute();
  for (const index of ["media_owner_bytes", "media_finished", "media_created"]) await db.schema.dropIndex(index).ifExists().execute();
  for (const name of ["finished_at", "processing_started_at", "unique_viewers", "views"]) await db.schema.alterTable("media").dropColumn(name).execute();
}

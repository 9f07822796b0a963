import type { Kysely } from "kysely";

/** Quota held for uploads in progress; an expired reservation is given back by a sweep. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("quota_reservations")
    .ifNotExists()
    .addColumn("id", "varchar(64)", (col) => col.primaryKey())
    .addColumn("user_id", "varchar(26)", (col) => col.notNull())
    .addColumn("bytes", "bigint", (col) => col.notNull())
    .addColumn("expires_at", "bigint", (col) => col.notNull())
    .execute();
  await db.schema.createIndex("quota_reservations_expires_at").ifNotExists().on("quota_reservations").column("expires_at").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("quota_reservations").ifExists().execute();
}

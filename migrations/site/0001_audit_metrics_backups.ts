import type { Kysely } from "kysely";
import { unlessThere } from "../steps";

// Each step is skipped when a partial run already did it (migrations/steps.ts).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("audit_log")
    .ifNotExists()
    .addColumn("id", "varchar(26)", (col) => col.primaryKey())
    .addColumn("at", "bigint", (col) => col.notNull())
    .addColumn("actor_id", "varchar(26)")
    .addColumn("action", "varchar(64)", (col) => col.notNull())
    .addColumn("subject_id", "varchar(26)")
    .addColumn("ip", "varchar(45)")
    .addColumn("detail", "text")
    .execute();
  await unlessThere(() => db.schema.createIndex("audit_log_actor").on("audit_log").columns(["actor_id", "id"]).execute());

  await db.schema
    .createTable("metric_snapshots")
    .ifNotExists()
    .addColumn("id", "varchar(26)", (col) => col.primaryKey())
    .addColumn("taken_at", "bigint", (col) => col.notNull())
    .addColumn("name", "varchar(128)", (col) => col.notNull())
    .addColumn("value", "double precision", (col) => col.notNull())
    .addColumn("labels", "text")
    .execute();
  await unlessThere(() => db.schema.createIndex("metric_snapshots_name_taken").on("metric_snapshots").columns(["name", "taken_at"]).execute());

  await db.schema
    .createTable("backups")
    .ifNotExists()
    .addColumn("id", "varchar(26)", (col) => col.primaryKey())
    .addColumn("database_name", "varchar(64)", (col) => col.notNull())
    .addColumn("started_at", "bigint", (col) => col.notNull())
    .addColumn("finished_at", "bigint")
    .addColumn("status", "varchar(12)", (col) => col.notNull())
    .addColumn("location", "varchar(1024)")
    .addColumn("bytes", "bigint")
    .addColumn("error", "text")
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("backups").execute();
  await db.schema.dropTable("metric_snapshots").execute();
  await db.schema.dropTable("audit_log").execute();
}

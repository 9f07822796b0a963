import type { Kysely } from "kysely";
import { unlessThere } from "../steps";

// Each step is skipped when a partial run already did it (migrations/steps.ts).
export async function up(db: Kysely<unknown>): Promise<void> {
  await unlessThere(() => db.schema.alterTable("backups").addColumn("manifest_key", "varchar(1024)").execute());
  await unlessThere(() => db.schema.alterTable("backups").addColumn("sha256", "varchar(64)").execute());
  await unlessThere(() => db.schema.alterTable("backups").addColumn("gtid_position", "text").execute());
  await unlessThere(() => db.schema.createIndex("backups_database_started").on("backups").columns(["database_name", "started_at"]).execute());

  await db.schema
    .createTable("backup_drills")
    .ifNotExists()
    .addColumn("id", "varchar(26)", (col) => col.primaryKey())
    .addColumn("backup_id", "varchar(26)")
    .addColumn("database_name", "varchar(64)", (col) => col.notNull())
    .addColumn("started_at", "bigint", (col) => col.notNull())
    .addColumn("duration_ms", "bigint", (col) => col.notNull())
    .addColumn("bytes", "bigint", (col) => col.notNull())
    .addColumn("outcome", "varchar(12)", (col) => col.notNull())
    .addColumn("reason", "text")
    .addColumn("missing_objects", "integer")
    .execute();
  await unlessThere(() => db.schema.createIndex("backup_drills_backup").on("backup_drills").columns(["backup_id", "started_at"]).execute());
  await unlessThere(() => db.schema.createIndex("backup_drills_outcome").on("backup_drills").columns(["outcome", "started_at"]).execute());
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("backup_drills").execute();
  await db.schema.dropIndex("backups_database_started").on("backups").execute();
  await db.schema.alterTable("backups").dropColumn("gtid_position").execute();
  await db.schema.alterTable("backups").dropColumn("sha256").execute();
  await db.schema.alterTable("backups").dropColumn("manifest_key").execute();
}

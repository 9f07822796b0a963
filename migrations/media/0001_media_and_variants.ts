import type { Kysely } from "kysely";
import { unlessThere } from "../steps";

// Each step is skipped when a partial run already did it (migrations/steps.ts).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("media")
    .ifNotExists()
    .addColumn("id", "varchar(26)", (col) => col.primaryKey())
    .addColumn("owner_id", "varchar(26)", (col) => col.notNull())
    .addColumn("kind", "varchar(8)", (col) => col.notNull())
    .addColumn("title", "varchar(200)")
    .addColumn("description", "text")
    .addColumn("visibility", "varchar(8)", (col) => col.notNull().defaultTo("private"))
    .addColumn("status", "varchar(12)", (col) => col.notNull())
    .addColumn("reason", "varchar(500)")
    .addColumn("original_key", "varchar(255)", (col) => col.notNull())
    .addColumn("bytes", "bigint", (col) => col.notNull())
    .addColumn("mime", "varchar(100)", (col) => col.notNull())
    .addColumn("sha256", "char(64)", (col) => col.notNull())
    .addColumn("width", "integer")
    .addColumn("height", "integer")
    .addColumn("duration_seconds", "double precision")
    .addColumn("placeholder", "varchar(100)")
    .addColumn("created_at", "bigint", (col) => col.notNull())
    .addColumn("updated_at", "bigint", (col) => col.notNull())
    .execute();
  await unlessThere(() => db.schema.createIndex("media_owner_created").on("media").columns(["owner_id", "created_at", "id"]).execute());
  await unlessThere(() => db.schema.createIndex("media_visibility_created").on("media").columns(["visibility", "created_at", "id"]).execute());
  await unlessThere(() => db.schema.createIndex("media_owner_sha256").on("media").columns(["owner_id", "sha256"]).execute());
  await unlessThere(() => db.schema.createIndex("media_status_updated").on("media").columns(["status", "updated_at"]).execute());

  await db.schema
    .createTable("variants")
    .ifNotExists()
    .addColumn("media_id", "varchar(26)", (col) => col.notNull())
    .addColumn("name", "varchar(32)", (col) => col.notNull())
    .addColumn("object_key", "varchar(255)", (col) => col.notNull())
    .addColumn("mime", "varchar(100)", (col) => col.notNull())
    .addColumn("width", "integer")
    .addColumn("height", "integer")
    .addColumn("bytes", "bigint", (col) => col.notNull())
    .addColumn("created_at", "bigint", (col) => col.notNull())
    .addPrimaryKeyConstraint("variants_pk", ["media_id", "name"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("variants").execute();
  await db.schema.dropTable("media").execute();
}

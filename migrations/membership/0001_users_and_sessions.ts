import type { Kysely } from "kysely";
import { unlessThere } from "../steps";

// Each step is skipped when a partial run already did it (migrations/steps.ts).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("users")
    .ifNotExists()
    .addColumn("id", "varchar(26)", (col) => col.primaryKey())
    .addColumn("username", "varchar(64)", (col) => col.notNull())
    .addColumn("username_key", "varchar(64)", (col) => col.notNull().unique())
    .addColumn("email", "varchar(254)", (col) => col.notNull())
    .addColumn("email_key", "varchar(254)", (col) => col.notNull().unique())
    .addColumn("password_hash", "varchar(255)")
    .addColumn("role", "varchar(16)", (col) => col.notNull().defaultTo("user"))
    .addColumn("quota_bytes", "bigint", (col) => col.notNull())
    .addColumn("used_bytes", "bigint", (col) => col.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (col) => col.notNull())
    .addColumn("updated_at", "bigint", (col) => col.notNull())
    .execute();

  await db.schema
    .createTable("sessions")
    .ifNotExists()
    .addColumn("id", "char(64)", (col) => col.primaryKey())
    .addColumn("user_id", "varchar(26)", (col) => col.notNull())
    .addColumn("created_at", "bigint", (col) => col.notNull())
    .addColumn("last_seen_at", "bigint", (col) => col.notNull())
    .addColumn("expires_at", "bigint", (col) => col.notNull())
    .addColumn("ip", "varchar(45)")
    .addColumn("user_agent", "varchar(512)")
    .execute();
  await unlessThere(() => db.schema.createIndex("sessions_user_id").on("sessions").column("user_id").execute());
  await unlessThere(() => db.schema.createIndex("sessions_expires_at").on("sessions").column("expires_at").execute());
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("sessions").execute();
  await db.schema.dropTable("users").execute();
}

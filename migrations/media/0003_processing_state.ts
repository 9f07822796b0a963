import type { Kysely } from "kysely";
import { unlessThere } from "../steps";

/**
 * Processing state on the row (the database is the truth; the job channel only nudges):
 * how many attempts were made, and the latest progress, readable by a client that
 * reconnects. Variants get a duration (audio and video renditions).
 * Each step is skipped when already done (MariaDB/MySQL commit DDL statement by statement).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await unlessThere(() => db.schema.alterTable("media").addColumn("attempts", "integer", (col) => col.notNull().defaultTo(0)).execute());
  await unlessThere(() => db.schema.alterTable("media").addColumn("progress_stage", "varchar(16)").execute());
  await unlessThere(() => db.schema.alterTable("media").addColumn("progress_percent", "integer").execute());
  await unlessThere(() => db.schema.alterTable("variants").addColumn("duration_seconds", "double precision").execute());
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("variants").dropColumn("duration_seconds").execute();
  await db.schema.alterTable("media").dropColumn("progress_percent").execute();
  await db.schema.alterTable("media").dropColumn("progress_stage").execute();
  await db.schema.alterTable("media").dropColumn("attempts").execute();
}

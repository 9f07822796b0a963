import type { Kysely } from "kysely";
import { unlessThere } from "../steps";

/**
 * media.claim_token: the token of the claim that started the item's latest attempt (lib/jobs/job-state.ts). A worker
 * whose claim was recorded but whose answer was lost asks again with the same token and gets the item back, instead
 * of being refused as if another worker held it.
 *
 * MariaDB/MySQL commit DDL statement by statement: the step is skipped when a partial run already did it.
 */

export async function up(db: Kysely<unknown>): Promise<void> {
  await unlessThere(() => db.schema.alterTable("media").addColumn("claim_token", "varchar(64)").execute());
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("media").dropColumn("claim_token").execute();
}

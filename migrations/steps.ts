import type { Kysely } from "kysely";
import { MysqlAdapter } from "kysely";

/**
 * MariaDB/MySQL commit DDL statement by statement, and a node can be stopped (or killed) half-way through a
 * migration: each step is written to be skipped when an earlier, partial run already did it. MySQL has no
 * CREATE INDEX IF NOT EXISTS or ADD COLUMN IF NOT EXISTS, so those steps ignore the server's "already there".
 */

const ALREADY_THERE = /already exists|Duplicate (column|key) name/i;
const ALREADY_GONE = /check that (column\/key|it) exists|no such index/i;

async function ignoring(pattern: RegExp, step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (error) {
    if (!pattern.test(String((error as Error).message))) throw error;
  }
}

/** Creates a column or an index, unless it is already there. */
export function unlessThere(step: () => Promise<unknown>): Promise<void> {
  return ignoring(ALREADY_THERE, step);
}

/** Drops a column or an index, unless it is already gone. */
export function unlessGone(step: () => Promise<unknown>): Promise<void> {
  return ignoring(ALREADY_GONE, step);
}

/** DROP INDEX needs `ON <table>` on MariaDB/MySQL and refuses it on SQLite. */
export async function dropIndex(db: Kysely<unknown>, name: string, table: string): Promise<void> {
  const builder = db.schema.dropIndex(name);
  await (db.getExecutor().adapter instanceof MysqlAdapter ? builder.on(table) : builder.ifExists()).execute();
}

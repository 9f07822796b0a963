import { createHash } from "node:crypto";
import SqliteDriver from "better-sqlite3";
import type { Kysely } from "kysely";
import { sql } from "kysely";
import type { TableSummary } from "./manifest";

/**
 * Row counts and content checksums of every table, so that a restored copy can be compared with what was
 * backed up. A checksum is the XOR of a hash of each row, so it needs no ordering; rows are unique by their
 * primary key, so no two equal rows cancel out. Each engine computes its own kind, and a copy is only ever
 * compared with a backup of the same engine, by the algorithm its manifest names.
 */
export interface DatabaseSummary {
  readonly tables: Record<string, TableSummary>;
  readonly migrations: string[];
  readonly checksumAlgorithm: ChecksumAlgorithm;
}

/**
 * How MariaDB/MySQL rows are hashed (SQLite's is always "sha256-json"):
 * - "md5-hex": the first 64 bits of an MD5 of every value in hex; manifests without an algorithm have it.
 * - "crc32-quoted": a CRC32 of every value's bytes as QUOTE() writes them (NULL unquoted, so apart from
 *   the text 'NULL'), times an odd constant. About half the server's CPU of "md5-hex". The multiplication
 *   makes the hash non-linear, so that one change made to many rows alike cannot cancel out in the XOR as
 *   plain CRCs of equal-length rows would.
 */
export const MYSQL_CHECKSUM_ALGORITHMS = ["md5-hex", "crc32-quoted"] as const;
export type MysqlChecksumAlgorithm = (typeof MYSQL_CHECKSUM_ALGORITHMS)[number];
export type ChecksumAlgorithm = MysqlChecksumAlgorithm | "sha256-json";

/** What new backups of MariaDB/MySQL use. */
export const CURRENT_MYSQL_CHECKSUM: MysqlChecksumAlgorithm = "crc32-quoted";
/** What a manifest that names no algorithm was made with. */
export const LEGACY_MYSQL_CHECKSUM: MysqlChecksumAlgorithm = "md5-hex";

/** The algorithm a manifest's checksums were made with; throws for one this version does not know. */
export function checksumAlgorithmOf(manifest: { readonly engine: string; readonly checksumAlgorithm?: string }): ChecksumAlgorithm {
  const named = manifest.checksumAlgorithm;
  if (manifest.engine === "sqlite") {
    if (named === undefined || named === "sha256-json") return "sha256-json";
  } else {
    if (named === undefined) return LEGACY_MYSQL_CHECKSUM;
    if ((MYSQL_CHECKSUM_ALGORITHMS as readonly string[]).includes(named)) return named as MysqlChecksumAlgorithm;
  }
  throw new Error(`the manifest's checksum algorithm ${JSON.stringify(named)} is unknown for ${manifest.engine} (made by a newer Shoal?)`);
}

/** One row's hash as an unsigned integer, over its columns in order. */
function rowHash(algorithm: ChecksumAlgorithm, columns: readonly string[]) {
  if (algorithm === "sha256-json") throw new TypeError("sha256-json is SQLite's checksum, not MariaDB/MySQL's");
  if (algorithm === "md5-hex") {
    // Each value by its text form's bytes, NULL apart from every value; hex never contains ',' or 'N'.
    const values = sql.join(columns.map((column) => sql`ifnull(hex(cast(${sql.ref(column)} as binary)), 'N')`));
    return sql`cast(conv(left(md5(concat_ws(',', ${values})), 16), 16, 10) as unsigned)`;
  }
  // QUOTE() escapes quotes and backslashes, so the ','-joined list reads back one way only. The constant is
  // odd and below 2^32, so the product of a 32-bit CRC stays within an unsigned 64-bit integer.
  const values = sql.join(columns.map((column) => sql`quote(cast(${sql.ref(column)} as binary))`));
  return sql`crc32(concat_ws(',', ${values})) * 2654435761`;
}

interface ColumnRow {
  table_name: string;
  column_name: string;
}

/** MariaDB/MySQL, on the caller's connection: inside a consistent-snapshot transaction it describes that snapshot. */
export async function summariseMysql(
  connection: Kysely<unknown>,
  schema: string,
  algorithm: ChecksumAlgorithm = CURRENT_MYSQL_CHECKSUM,
): Promise<DatabaseSummary> {
  const { rows: columns } = await sql<ColumnRow>`
    select table_name as table_name, column_name as column_name
    from information_schema.columns c
    where c.table_schema = ${schema}
      and exists (select 1 from information_schema.tables t where t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE')
    order by table_name, ordinal_position`.execute(connection);
  const byTable = new Map<string, string[]>();
  for (const { table_name: table, column_name: column } of columns) byTable.set(table, [...(byTable.get(table) ?? []), column]);
  const tables: Record<string, TableSummary> = {};
  for (const [table, names] of [...byTable].sort(([a], [b]) => a.localeCompare(b))) {
    const { rows } = await sql<{ row_count: number | string; checksum: string }>`
      select count(*) as row_count, cast(coalesce(bit_xor(${rowHash(algorithm, names)}), 0) as char) as checksum
      from ${sql.table(`${schema}.${table}`)}`.execute(connection);
    const row = rows[0];
    tables[table] = { rows: Number(row?.row_count ?? 0), checksum: String(row?.checksum ?? "0") };
  }
  const migrations =
    "kysely_migration" in tables
      ? (await sql<{ name: string }>`select name from ${sql.table(`${schema}.kysely_migration`)} order by name`.execute(connection)).rows.map(
          (row) => row.name,
        )
      : [];
  return { tables, migrations, checksumAlgorithm: algorithm };
}

const quoteIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;

function sqliteValue(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return `x${value.toString("hex")}`;
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** A SQLite file, opened read-only (a backup copy or a restored file, which nothing else writes). */
export function summariseSqliteFile(file: string): DatabaseSummary {
  const db = new SqliteDriver(file, { readonly: true, fileMustExist: true });
  try {
    db.defaultSafeIntegers(true);
    const names = (db.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name").all() as { name: string }[]).map(
      (row) => row.name,
    );
    const tables: Record<string, TableSummary> = {};
    for (const name of names) {
      let rows = 0;
      let checksum = 0n;
      for (const row of db.prepare(`select * from ${quoteIdentifier(name)}`).raw(true).iterate() as Iterable<unknown[]>) {
        rows++;
        checksum ^= createHash("sha256").update(JSON.stringify(row.map(sqliteValue))).digest().readBigUInt64BE(0);
      }
      tables[name] = { rows, checksum: checksum.toString() };
    }
    const migrations = names.includes("kysely_migration")
      ? (db.prepare("select name from kysely_migration order by name").all() as { name: string }[]).map((row) => row.name)
      : [];
    return { tables, migrations, checksumAlgorithm: "sha256-json" };
  } finally {
    db.close();
  }
}

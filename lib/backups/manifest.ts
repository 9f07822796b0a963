import { createHmac, timingSafeEqual } from "node:crypto";
import type { DatabaseName } from "../../config/settings";
import type { ChecksumAlgorithm } from "./table-checksums";

/** A table's row count and an order-independent checksum of its contents, as the engine computes it (see table-checksums.ts). */
export interface TableSummary {
  readonly rows: number;
  readonly checksum: string;
}

export interface BackupManifest {
  readonly formatVersion: 1;
  readonly id: string;
  readonly database: DatabaseName;
  readonly engine: "mariadb" | "mysql" | "sqlite";
  /** ISO time at which the snapshot was taken. */
  readonly takenAt: string;
  /** The stored (compressed, encrypted) file. */
  readonly objectKey: string;
  readonly sha256: string;
  readonly bytes: number;
  /** The GTID position the snapshot includes; empty for SQLite. */
  readonly gtidPosition: string;
  /** Host and port the dump was taken from, never credentials. */
  readonly source: string;
  readonly serverVersion: string;
  readonly shoalVersion: string;
  /** Names of the applied migrations, in order. */
  readonly migrations: readonly string[];
  readonly tables: Readonly<Record<string, TableSummary>>;
  /** How the tables' checksums were computed (see table-checksums.ts); absent in manifests made before it was recorded. */
  readonly checksumAlgorithm?: ChecksumAlgorithm;
  /** HMAC-SHA256 of the rest under the backup key, so a manifest cannot be edited to match a changed file. */
  readonly signature: string;
}

export type UnsignedManifest = Omit<BackupManifest, "signature">;

function canonical(manifest: UnsignedManifest): string {
  const sorted = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sorted);
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((key) => [key, sorted((value as Record<string, unknown>)[key])]),
      );
    }
    return value;
  };
  return JSON.stringify(sorted(manifest));
}

function signatureOf(manifest: UnsignedManifest, key: Buffer): string {
  return createHmac("sha256", key).update("shoal backup manifest").update(canonical(manifest)).digest("hex");
}

export function signManifest(manifest: UnsignedManifest, key: Buffer): BackupManifest {
  return { ...manifest, signature: signatureOf(manifest, key) };
}

/** Parses a stored manifest and checks its signature; throws with the reason otherwise. */
export function readManifest(text: string, key: Buffer): BackupManifest {
  const parsed = JSON.parse(text) as BackupManifest;
  if (parsed.formatVersion !== 1 || typeof parsed.signature !== "string") throw new Error("not a Shoal backup manifest");
  const { signature, ...rest } = parsed;
  const expected = Buffer.from(signatureOf(rest, key), "hex");
  const given = Buffer.from(signature, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new Error("the manifest's signature does not match (changed, or made with another key)");
  }
  return parsed;
}

/** Where a backup's two objects live under the backup prefix. */
export function backupObjectKeys(database: DatabaseName, id: string): { data: string; manifest: string } {
  const base = `backups/${database}/${id}`;
  return { data: `${base}.gz.enc`, manifest: `${base}.manifest.json` };
}

export interface TableMismatch {
  readonly table: string;
  readonly expected: TableSummary | undefined;
  readonly actual: TableSummary | undefined;
}

/** Tables whose rows or checksum differ between the manifest and a restored copy (tables missing on either side included). */
export function compareTables(
  expected: Readonly<Record<string, TableSummary>>,
  actual: Readonly<Record<string, TableSummary>>,
): TableMismatch[] {
  const names = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
  return names.flatMap((table) => {
    const want = expected[table];
    const got = actual[table];
    return want?.rows === got?.rows && want?.checksum === got?.checksum ? [] : [{ table, expected: want, actual: got }];
  });
}

export function describeMismatches(mismatches: readonly TableMismatch[]): string {
  return mismatches
    .map(({ table, expected, actual }) => {
      if (expected === undefined) return `${table}: not in the backup`;
      if (actual === undefined) return `${table}: missing after restore`;
      return expected.rows !== actual.rows
        ? `${table}: ${actual.rows} rows, backup has ${expected.rows}`
        : `${table}: contents differ (checksum)`;
    })
    .join("; ");
}

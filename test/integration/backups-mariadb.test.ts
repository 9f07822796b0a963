import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { sql } from "kysely";
import type { ReplicationSettings } from "../../config/settings";
import { checkStoredFile, loadManifest, storeManifest } from "../../lib/backups/backup-files";
import { dumpsFor, withAccount } from "../../lib/backups/dump-sources";
import { compareTables, describeMismatches, signManifest } from "../../lib/backups/manifest";
import { openServer } from "../../lib/backups/mysql-dump";
import { RestoreRefusedError, dropMysqlDatabase, restoreBackup, restoreProblem } from "../../lib/backups/restore";
import { summariseMysql } from "../../lib/backups/table-checksums";
import type { ChecksumAlgorithm } from "../../lib/backups/table-checksums";
import { takeBackup } from "../../lib/backups/take-backup";
import type { Database } from "../../lib/db/database";
import { createDatabase } from "../../lib/db/open-database";
import type { MediaDatabase } from "../../lib/db/schemas/media";
import { MemoryExpiringStore } from "../../lib/expiring-store";
import { S3Storage } from "../../lib/storage/s3-storage";
import { MIGRATIONS } from "../../migrations";
import { startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";

const quiet = { info: () => undefined, warn: () => undefined };
const replication: ReplicationSettings = {
  maxLagSeconds: 30,
  rejoinLagSeconds: 15,
  probeIntervalMs: 200,
  readYourWritesWaitMs: 200,
  readYourWritesWindowMs: 30_000,
};

let services: TestServices;
let storage: S3Storage;
let media: Database<MediaDatabase>;
const key = randomBytes(32);

function adminUrl(): string {
  const mariadb = services.mariadb!;
  return withAccount(mariadb.primaryUrl, { user: mariadb.adminUser, password: mariadb.adminPassword });
}

function startDump() {
  const mariadb = services.mariadb!;
  return dumpsFor(
    { media: { kind: "mysql", database: "shoal_media", primaryUrl: mariadb.primaryUrl, replicaUrls: mariadb.replicaUrls, poolSize: 2 } } as never,
    30,
    { user: mariadb.adminUser, password: mariadb.adminPassword },
  );
}

async function rowsOf(database: string, table: string): Promise<unknown[]> {
  const db = openServer(adminUrl(), database, 1);
  try {
    return (await sql`select * from ${sql.table(table)} order by 1`.execute(db)).rows;
  } finally {
    await db.destroy();
  }
}

async function execute(database: string, statement: string): Promise<void> {
  const db = openServer(adminUrl(), database, 1);
  try {
    await sql.raw(statement).execute(db);
  } finally {
    await db.destroy();
  }
}

async function summaryOf(database: string, algorithm: ChecksumAlgorithm) {
  const db = openServer(adminUrl(), database, 1);
  try {
    return await summariseMysql(db, database, algorithm);
  } finally {
    await db.destroy();
  }
}

async function insertMedia(count: number, from = 0): Promise<void> {
  const now = Date.now();
  await media.write(async (trx) => {
    const rows = Array.from({ length: count }, (_, offset) => {
      const index = from + offset;
      return {
        id: `m${String(index).padStart(12, "0")}`,
        owner_id: "owner0000001",
        kind: "image" as const,
        title: index % 3 === 0 ? null : `title ${index} ✓`,
        description: null,
        visibility: "private" as const,
        status: "ready" as const,
        reason: null,
        original_key: `media/m${String(index).padStart(12, "0")}/original.jpg`,
        bytes: index * 10,
        mime: "image/jpeg",
        sha256: randomBytes(32).toString("hex"),
        width: 640,
        height: 480,
        duration_seconds: null,
        placeholder: null,
        declared_mime: null,
        original_name: null,
        attempts: 0,
        progress_stage: null,
        progress_percent: null,
        created_at: now,
        updated_at: now,
      };
    });
    await trx.insertInto("media").values(rows).execute();
  });
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1, templateDir: process.env.SHOAL_TEST_MARIADB_TEMPLATE }, s3: true });
  const s3 = services.s3!;
  storage = new S3Storage({ ...s3, unsignedPayload: false });
  const mariadb = services.mariadb!;
  media = createDatabase<MediaDatabase>(
    "media",
    { kind: "mysql", database: "shoal_media", primaryUrl: mariadb.primaryUrl, replicaUrls: mariadb.replicaUrls, poolSize: 4 },
    replication,
    new MemoryExpiringStore(),
    quiet,
  );
  await media.connect();
  await media.migrate(MIGRATIONS.media);
  await insertMedia(300);
}, 120_000);

afterAll(async () => {
  await media?.close();
  await storage?.close();
  await services?.stop();
});

describe("backups of a MariaDB database", () => {
  it("stores an encrypted dump with a manifest, and restores it row for row", async () => {
    const manifest = await takeBackup("media", startDump(), storage, key);
    expect(manifest.engine).toBe("mariadb");
    expect(manifest.gtidPosition).toMatch(/^\d+-\d+-\d+/);
    expect(manifest.tables.media?.rows).toBe(300);
    expect(manifest.migrations.length).toBeGreaterThan(0);
    expect(manifest.bytes).toBeGreaterThan(0);
    const stored = await storage.get(manifest.objectKey);
    const chunks: Buffer[] = [];
    for await (const chunk of stored.body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).includes(Buffer.from("INSERT INTO"))).toBe(false);

    const target = { kind: "mysql" as const, url: adminUrl(), database: "shoal_restored_a" };
    const outcome = await restoreBackup({ storage, key, manifest, target, force: false });
    expect(restoreProblem(outcome, manifest)).toBeUndefined();
    expect(await rowsOf("shoal_restored_a", "media")).toEqual(await rowsOf("shoal_media", "media"));
    await expect(restoreBackup({ storage, key, manifest, target, force: false })).rejects.toThrow(RestoreRefusedError);
    await dropMysqlDatabase(adminUrl(), "shoal_restored_a");
  }, 120_000);

  it("cannot be restored without the key, and fails verification when one stored byte is flipped", async () => {
    const manifest = await takeBackup("media", startDump(), storage, key);
    const target = { kind: "mysql" as const, url: adminUrl(), database: "shoal_restored_b" };
    await expect(restoreBackup({ storage, key: randomBytes(32), manifest, target, force: true })).rejects.toThrow("another key");

    const stored = await storage.get(manifest.objectKey);
    const chunks: Buffer[] = [];
    for await (const chunk of stored.body) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    await storage.put(manifest.objectKey, Readable.from([bytes]), "application/octet-stream");
    await expect(checkStoredFile(storage, manifest)).rejects.toThrow("does not match its manifest");
    await expect(restoreBackup({ storage, key, manifest, target, force: true })).rejects.toThrow("does not match its manifest");
    await dropMysqlDatabase(adminUrl(), "shoal_restored_b");
  }, 120_000);

  it("records its checksum algorithm, and a restored copy with one byte changed, or one change to every row, does not match", async () => {
    const manifest = await takeBackup("media", startDump(), storage, key);
    expect(manifest.checksumAlgorithm).toBe("crc32-quoted");
    const target = { kind: "mysql" as const, url: adminUrl(), database: "shoal_restored_d" };
    expect(restoreProblem(await restoreBackup({ storage, key, manifest, target, force: true }), manifest)).toBeUndefined();
    const mismatchesAfter = async (change: string, undo: string): Promise<string> => {
      await execute("shoal_restored_d", change);
      const summary = await summaryOf("shoal_restored_d", "crc32-quoted");
      await execute("shoal_restored_d", undo);
      return describeMismatches(compareTables(manifest.tables, summary.tables));
    };
    // One byte of one row's SHA-256 column (the same length, so only the content differs).
    const row = (await rowsOf("shoal_restored_d", "media")).find((media) => (media as { id: string }).id === "m000000000007") as { sha256: string };
    const changed = row.sha256.slice(0, 63) + (row.sha256.endsWith("0") ? "1" : "0");
    expect(
      await mismatchesAfter(`update media set sha256 = '${changed}' where id = 'm000000000007'`, `update media set sha256 = '${row.sha256}' where id = 'm000000000007'`),
    ).toBe("media: contents differ (checksum)");
    expect(await mismatchesAfter("update media set mime = 'image/jpeh'", "update media set mime = 'image/jpeg'")).toBe("media: contents differ (checksum)");
    expect(await mismatchesAfter("update media set title = null where id = 'm000000000001'", "update media set title = 'title 1 ✓' where id = 'm000000000001'")).toBe(
      "media: contents differ (checksum)",
    );
    expect(describeMismatches(compareTables(manifest.tables, (await summaryOf("shoal_restored_d", "crc32-quoted")).tables))).toBe("");
    await dropMysqlDatabase(adminUrl(), "shoal_restored_d");
  }, 120_000);

  it("still verifies a manifest made before the algorithm was recorded, with the MD5 checksums it has", async () => {
    const current = await takeBackup("media", startDump(), storage, key);
    const { signature: _signature, checksumAlgorithm: _algorithm, ...unsigned } = current;
    // Nothing writes meanwhile, so the primary holds what the backup does.
    const md5 = await summaryOf("shoal_media", "md5-hex");
    expect(md5.tables.media?.checksum).not.toBe(current.tables.media?.checksum);
    await storeManifest(storage, signManifest({ ...unsigned, tables: md5.tables }, key));
    const legacy = await loadManifest(storage, "media", current.id, key);
    expect(legacy.checksumAlgorithm).toBeUndefined();
    const target = { kind: "mysql" as const, url: adminUrl(), database: "shoal_restored_e" };
    const outcome = await restoreBackup({ storage, key, manifest: legacy, target, force: true });
    expect(restoreProblem(outcome, legacy)).toBeUndefined();
    expect(outcome.summary.checksumAlgorithm).toBe("md5-hex");
    await dropMysqlDatabase(adminUrl(), "shoal_restored_e");
  }, 120_000);

  it("refuses a manifest whose checksum algorithm it does not know, before touching the target", async () => {
    const current = await takeBackup("media", startDump(), storage, key);
    const { signature: _signature, ...unsigned } = current;
    const unknown = signManifest({ ...unsigned, checksumAlgorithm: "crc64-future" as ChecksumAlgorithm }, key);
    const target = { kind: "mysql" as const, url: adminUrl(), database: "shoal_restored_f" };
    await expect(restoreBackup({ storage, key, manifest: unknown, target, force: true })).rejects.toThrow('checksum algorithm "crc64-future" is unknown');
    const server = openServer(adminUrl(), undefined, 1);
    try {
      const { rows } = await sql`select schema_name from information_schema.schemata where schema_name = 'shoal_restored_f'`.execute(server);
      expect(rows).toEqual([]);
    } finally {
      await server.destroy();
    }
  }, 120_000);

  it("counts in the dump's own snapshot while writes go on", async () => {
    let writing = true;
    let written = 300;
    const writer = (async () => {
      while (writing) {
        await insertMedia(5, written + 1000);
        written += 5;
      }
    })();
    const manifest = await takeBackup("media", startDump(), storage, key);
    writing = false;
    await writer;
    const target = { kind: "mysql" as const, url: adminUrl(), database: "shoal_restored_c" };
    const outcome = await restoreBackup({ storage, key, manifest, target, force: true });
    expect(restoreProblem(outcome, manifest)).toBeUndefined();
    await dropMysqlDatabase(adminUrl(), "shoal_restored_c");
  }, 120_000);
});

import fs from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { monotonicFactory } from "ulid";
import type { DatabaseName } from "../../config/settings";
import type { ObjectStorage } from "../storage/object-storage";
import { storeEncrypted, storeManifest } from "./backup-files";
import { backupObjectKeys, signManifest } from "./manifest";
import type { BackupManifest } from "./manifest";
import type { DatabaseSummary } from "./table-checksums";

/** A database's consistent snapshot as a stream, with what the manifest records about it. */
export interface SnapshotDump {
  readonly data: Readable;
  readonly engine: BackupManifest["engine"];
  /** Host and port, or file name; never credentials. */
  readonly source: string;
  readonly serverVersion: string;
  readonly gtidPosition: string;
  readonly summary: Promise<DatabaseSummary>;
  /** Settles once the dump has ended; rejects when it failed. */
  readonly finished: Promise<void>;
}

export type StartDump = (database: DatabaseName) => Promise<SnapshotDump>;

export interface BackupProgress {
  readonly database: DatabaseName;
  readonly id: string;
  readonly storedBytes: number;
}

/** Shoal's version from its package.json, found upwards from here (the source tree and dist/ alike). */
function readShoalVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "shoal" && pkg.version !== undefined) return pkg.version;
    } catch {
      // not here; look further up
    }
    if (path.dirname(dir) === dir) return "unknown";
  }
}

const shoalVersion = readShoalVersion();

/** Backup ids sort by time, so the catalogue's order is the ids' order. */
const ulid = monotonicFactory();
export const newBackupId = (now: number = Date.now()): string => ulid(now);

/**
 * Takes one database's backup: the dump streams through gzip and the encryption into storage, and the
 * signed manifest is stored beside it only once the dump has ended well, so a manifest always names a
 * whole file. A failed backup leaves no object behind.
 */
export async function takeBackup(
  database: DatabaseName,
  startDump: StartDump,
  storage: ObjectStorage,
  key: Buffer,
  options: { id?: string; now?: () => number; onProgress?: (progress: BackupProgress) => void } = {},
): Promise<BackupManifest> {
  const now = options.now ?? Date.now;
  const takenAt = now();
  const id = options.id ?? newBackupId(takenAt);
  const keys = backupObjectKeys(database, id);
  const dump = await startDump(database);
  try {
    const stored = await storeEncrypted(storage, keys.data, dump.data, key, (storedBytes) =>
      options.onProgress?.({ database, id, storedBytes }),
    );
    await dump.finished;
    const summary = await dump.summary;
    const manifest = signManifest(
      {
        formatVersion: 1,
        id,
        database,
        engine: dump.engine,
        takenAt: new Date(takenAt).toISOString(),
        objectKey: keys.data,
        sha256: stored.sha256,
        bytes: stored.bytes,
        gtidPosition: dump.gtidPosition,
        source: dump.source,
        serverVersion: dump.serverVersion,
        shoalVersion,
        migrations: summary.migrations,
        tables: summary.tables,
        checksumAlgorithm: summary.checksumAlgorithm,
      },
      key,
    );
    await storeManifest(storage, manifest);
    return manifest;
  } catch (error) {
    dump.data.destroy();
    await dump.finished.catch(() => undefined);
    await storage.delete(keys.data).catch(() => undefined);
    throw error;
  }
}

import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import SqliteDriver from "better-sqlite3";
import { sql } from "kysely";
import type { ObjectStorage } from "../storage/object-storage";
import type { BackupManifest } from "./manifest";
import { openServer } from "./mysql-dump";
import { dropMysqlDatabase, restoreBackup, restoreProblem } from "./restore";
import type { RestoreTarget } from "./restore";

export interface DrillResult {
  readonly backupId: string;
  readonly database: string;
  readonly startedAt: number;
  readonly durationMs: number;
  /** Stored bytes read. */
  readonly bytes: number;
  readonly outcome: "passed" | "failed";
  readonly reason: string | null;
  /** media: object keys the restored catalogue names that storage lacks; null for other databases or when the restore failed. */
  readonly missingObjects: number | null;
}

/** Where a drill restores: a scratch database on a MariaDB/MySQL server, or a temporary SQLite file. */
export type DrillScratch =
  | {
      readonly kind: "mysql";
      readonly url: string;
      /** Cluster mode: brings the restored copy forward with the archived binary logs; answers a problem, if any. */
      readonly bringForward?: (manifest: BackupManifest, target: RestoreTarget) => Promise<string | undefined>;
    }
  | { readonly kind: "sqlite" };

const OBJECT_CHECK_CONCURRENCY = 16;

async function mediaObjectKeys(target: RestoreTarget): Promise<string[]> {
  if (target.kind === "sqlite") {
    const db = new SqliteDriver(target.file, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare("select original_key as k from media union select object_key as k from variants").all() as { k: string }[];
      return rows.map((row) => row.k);
    } finally {
      db.close();
    }
  }
  const db = openServer(target.url, target.database, 1);
  try {
    const { rows } = await sql<{ k: string }>`select original_key as k from media union select object_key as k from variants`.execute(db);
    return rows.map((row) => row.k);
  } finally {
    await db.destroy();
  }
}

/** How many of the keys storage does not have. */
export async function countMissingObjects(keys: readonly string[], objects: Pick<ObjectStorage, "head">): Promise<number> {
  let missing = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      if ((await objects.head(key)) === undefined) missing++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(OBJECT_CHECK_CONCURRENCY, keys.length) }, worker));
  return missing;
}

/**
 * A restore drill: the backup is restored into scratch space, decrypted only after its SHA-256 matched, every
 * table's rows and checksum and the migrations compared with its manifest, and for the media database every
 * object key it names looked up in storage. The scratch copy is dropped afterwards, whatever happened.
 * In cluster mode the scratch's `bringForward` replays the archived binary logs onto the copy and checks the
 * GTID position it reached; `afterRestore` may check more and answer a problem.
 */
export async function runDrill(options: {
  storage: ObjectStorage;
  key: Buffer;
  manifest: BackupManifest;
  scratch: DrillScratch;
  mediaObjects?: Pick<ObjectStorage, "head">;
  afterRestore?: (target: RestoreTarget) => Promise<string | undefined>;
  now?: () => number;
}): Promise<DrillResult> {
  const { storage, key, manifest, scratch } = options;
  const now = options.now ?? Date.now;
  const startedAt = now();
  const suffix = `${manifest.id.toLowerCase()}_${randomBytes(3).toString("hex")}`;
  const scratchDir = scratch.kind === "sqlite" ? await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-drill-")) : undefined;
  const target: RestoreTarget =
    scratch.kind === "mysql"
      ? { kind: "mysql", url: scratch.url, database: `shoal_drill_${suffix}` }
      : { kind: "sqlite", file: path.join(scratchDir as string, `${manifest.database}.sqlite`) };
  let bytes = 0;
  let reason: string | undefined;
  let missingObjects: number | null = null;
  try {
    const outcome = await restoreBackup({ storage, key, manifest, target, force: false, now, onProgress: (progress) => (bytes = progress.bytes) });
    bytes = manifest.bytes;
    reason = restoreProblem(outcome, manifest);
    if (reason === undefined && scratch.kind === "mysql" && scratch.bringForward) reason = await scratch.bringForward(manifest, target);
    if (reason === undefined && options.afterRestore) reason = await options.afterRestore(target);
    if (manifest.database === "media" && options.mediaObjects) {
      missingObjects = await countMissingObjects(await mediaObjectKeys(target), options.mediaObjects);
      if (missingObjects > 0 && reason === undefined) reason = `${missingObjects} stored files the media database names are missing from storage`;
    }
  } catch (error) {
    reason = error instanceof Error ? error.message : String(error);
  } finally {
    if (target.kind === "mysql") await dropMysqlDatabase(target.url, target.database).catch(() => undefined);
    if (scratchDir !== undefined) await fs.promises.rm(scratchDir, { recursive: true, force: true });
  }
  return {
    backupId: manifest.id,
    database: manifest.database,
    startedAt,
    durationMs: now() - startedAt,
    bytes,
    outcome: reason === undefined ? "passed" : "failed",
    reason: reason ?? null,
    missingObjects,
  };
}

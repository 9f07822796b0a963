import type { DatabaseName } from "../../config/settings";
import type { CheckResult } from "../health";
import type { ObjectStorage } from "../storage/object-storage";
import { deleteBackupObjects, listManifests } from "./backup-files";
import type { BackupKey } from "./backup-key";
import type { CatalogueEntry, DrillRecord, NewDrill } from "./catalogue";
import { runDrill } from "./drill";
import type { DrillResult, DrillScratch } from "./drill";
import { backupObjectKeys } from "./manifest";
import { backupObjects, pruneObjects } from "./object-files";
import type { BackupManifest } from "./manifest";
import { backupsToDelete } from "./retention";
import type { RetentionPolicy } from "./retention";
import { newBackupId, takeBackup } from "./take-backup";
import type { StartDump } from "./take-backup";

/** The backup catalogue in the site database, through whatever reaches it. */
export interface CataloguePort {
  backupStarted(id: string, database: DatabaseName, startedAt: number): Promise<void>;
  backupSucceeded(manifest: BackupManifest, manifestKey: string, finishedAt: number): Promise<void>;
  backupFailed(id: string, error: string, finishedAt: number): Promise<void>;
  backupRemoved(id: string): Promise<void>;
  recordDrill(drill: NewDrill): Promise<DrillRecord>;
  verifiedIds(database: DatabaseName): Promise<string[]>;
  drillStatus(): Promise<{ last: (DrillRecord & { database: string }) | null; lastPassedAt: number | null }>;
  list(limit: number): Promise<CatalogueEntry[]>;
}

export interface OperationsLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface BackupOperationsOptions {
  readonly databases: readonly DatabaseName[];
  readonly key: BackupKey;
  /** Where backups are stored. */
  readonly storage: ObjectStorage;
  /** Where the media files are (drills look the media database's object keys up in it). */
  readonly mediaObjects: Pick<ObjectStorage, "head">;
  /** A local media store whose files each media backup copies by content (embedded); undefined with S3, whose bucket keeps them. */
  readonly mediaFiles?: ObjectStorage;
  readonly startDump: StartDump;
  readonly drillScratch: (database: DatabaseName) => DrillScratch;
  readonly retention: RetentionPolicy;
  readonly maxUnverifiedHours: number;
  readonly catalogue: CataloguePort;
  readonly audit: (action: string, detail: Record<string, unknown>) => Promise<void>;
  readonly logger: OperationsLogger;
  readonly now?: () => number;
}

export interface BackupRunResult {
  readonly backups: {
    readonly database: DatabaseName;
    readonly id: string;
    readonly bytes?: number;
    readonly error?: string;
    /** The media backup's files: stored by this backup, and already stored. */
    readonly files?: { readonly copied: number; readonly copiedBytes: number; readonly unchanged: number };
  }[];
  readonly deleted: number;
}

const MiB = 1024 * 1024;
/** Progress is logged every this many stored bytes. */
const PROGRESS_STEP = 64 * MiB;

export class BackupOperations {
  private readonly now: () => number;
  /** Extra reasons for the health check (media bucket without versioning, ...). */
  private readonly warnings = new Map<string, string>();

  constructor(private readonly options: BackupOperationsOptions) {
    this.now = options.now ?? Date.now;
  }

  private requireKey(): Buffer {
    const { key } = this.options;
    if (key.kind === "missing") throw new Error("BACKUP_ENCRYPTION_KEY is not set: cluster mode takes no backups without a key");
    return key.key;
  }

  setWarning(name: string, message: string | undefined): void {
    if (message === undefined) this.warnings.delete(name);
    else this.warnings.set(name, message);
  }

  /** Backs up the databases one after another; a failure of one does not stop the others. Retention runs after. */
  async backup(databases: readonly DatabaseName[] = this.options.databases, onProgress?: (message: string) => void): Promise<BackupRunResult> {
    const key = this.requireKey();
    const { catalogue, storage, logger } = this.options;
    const results: BackupRunResult["backups"][number][] = [];
    for (const database of databases) {
      const startedAt = this.now();
      const id = newBackupId(startedAt);
      await catalogue.backupStarted(id, database, startedAt);
      let nextReport = PROGRESS_STEP;
      const report = (message: string): void => {
        logger.info(message);
        onProgress?.(message);
      };
      report(`backup ${id} of ${database} started`);
      try {
        const manifest = await takeBackup(database, this.options.startDump, storage, key, {
          id,
          now: () => startedAt,
          onProgress: ({ storedBytes }) => {
            if (storedBytes < nextReport) return;
            nextReport += PROGRESS_STEP;
            report(`backup ${id} of ${database}: ${(storedBytes / MiB).toFixed(0)} MiB stored`);
          },
        });
        const files = database === "media" ? await this.backupMediaFiles(id, manifest.takenAt, key, report) : undefined;
        await catalogue.backupSucceeded(manifest, backupObjectKeys(database, id).manifest, this.now());
        const seconds = ((this.now() - startedAt) / 1000).toFixed(1);
        report(`backup ${id} of ${database} done: ${manifest.bytes} bytes, ${Object.keys(manifest.tables).length} tables, GTID ${manifest.gtidPosition || "-"}, ${seconds} s`);
        await this.options.audit("backup.succeeded", { id, database, bytes: manifest.bytes, gtidPosition: manifest.gtidPosition, ...(files ? { files } : {}) });
        results.push({ database, id, bytes: manifest.bytes, ...(files ? { files } : {}) });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        logger.error(`backup ${id} of ${database} failed: ${message}`);
        await catalogue.backupFailed(id, message, this.now()).catch(() => undefined);
        await this.options.audit("backup.failed", { id, database, reason: message });
        results.push({ database, id, error: message });
      }
    }
    const deleted = await this.applyRetention(databases);
    return { backups: results, deleted };
  }

  /** Copies the media files a media backup goes with (local store only); a failure removes the database backup too, so a kept media backup always has its files. */
  private async backupMediaFiles(id: string, takenAt: string, key: Buffer, report: (message: string) => void) {
    const source = this.options.mediaFiles;
    if (source === undefined) return undefined;
    try {
      const { copied, copiedBytes, unchanged } = await backupObjects({ source, backups: this.options.storage, key, backupId: id, takenAt });
      report(`backup ${id} of the media files: ${copied} copied (${copiedBytes} bytes), ${unchanged} unchanged`);
      return { copied, copiedBytes, unchanged };
    } catch (error) {
      await deleteBackupObjects(this.options.storage, "media", id).catch(() => undefined);
      throw error;
    }
  }

  /** Deletes the backups retention no longer keeps (objects first, then the catalogue row). */
  async applyRetention(databases: readonly DatabaseName[]): Promise<number> {
    const key = this.requireKey();
    let deleted = 0;
    for (const database of databases) {
      const { manifests } = await listManifests(this.options.storage, database, key);
      const verified = new Set(await this.options.catalogue.verifiedIds(database));
      const doomed = backupsToDelete(
        manifests.map((manifest) => ({ id: manifest.id, takenAt: Date.parse(manifest.takenAt), verified: verified.has(manifest.id) })),
        this.options.retention,
      );
      for (const id of doomed) {
        await deleteBackupObjects(this.options.storage, database, id);
        await this.options.catalogue.backupRemoved(id);
        deleted++;
      }
      if (doomed.length > 0) this.options.logger.info(`retention removed ${doomed.length} backups of ${database}`);
      if (database === "media" && doomed.length > 0 && this.options.mediaFiles !== undefined) {
        const kept = new Set(manifests.map((manifest) => manifest.id).filter((id) => !doomed.includes(id)));
        const removed = await pruneObjects(this.options.storage, key, kept);
        if (removed > 0) this.options.logger.info(`retention removed ${removed} stored media files no kept backup names`);
      }
    }
    return deleted;
  }

  /** Restores the newest backup of each database into scratch space and checks it; each outcome is recorded and audited. */
  async drill(databases: readonly DatabaseName[] = this.options.databases, onProgress?: (message: string) => void): Promise<DrillResult[]> {
    const key = this.requireKey();
    const results: DrillResult[] = [];
    for (const database of databases) {
      const { manifests } = await listManifests(this.options.storage, database, key);
      const newest = manifests[manifests.length - 1];
      let result: DrillResult;
      if (newest === undefined) {
        result = { backupId: "", database, startedAt: this.now(), durationMs: 0, bytes: 0, outcome: "failed", reason: "no readable backup to restore", missingObjects: null };
      } else {
        onProgress?.(`drill of ${database} backup ${newest.id} started`);
        result = await runDrill({
          storage: this.options.storage,
          key,
          manifest: newest,
          scratch: this.options.drillScratch(database),
          mediaObjects: this.options.mediaObjects,
          now: this.now,
        });
      }
      await this.options.catalogue.recordDrill({ ...result, backupId: result.backupId === "" ? null : result.backupId });
      const summary = `drill of ${database} backup ${result.backupId || "-"} ${result.outcome} in ${(result.durationMs / 1000).toFixed(1)} s (${result.bytes} bytes)${result.reason ? `: ${result.reason}` : ""}`;
      if (result.outcome === "passed") this.options.logger.info(summary);
      else this.options.logger.error(summary);
      onProgress?.(summary);
      await this.options.audit(`backup.drill.${result.outcome}`, {
        database,
        backupId: result.backupId || null,
        durationMs: result.durationMs,
        reason: result.reason,
        missingObjects: result.missingObjects,
      });
      results.push(result);
    }
    return results;
  }

  /** The `backups` health check: degraded without a key, when the last drill failed, or none passed for too long (counted from `since` before the first). */
  async health(since: number): Promise<CheckResult> {
    const problems: string[] = [];
    if (this.options.key.kind === "missing") problems.push("BACKUP_ENCRYPTION_KEY is not set: no backups are taken");
    const { last, lastPassedAt } = await this.options.catalogue.drillStatus();
    const maxAgeMs = this.options.maxUnverifiedHours * 3_600_000;
    if (last !== null && last.outcome === "failed") problems.push(`the last drill (${last.database}, ${last.at}) failed: ${last.reason ?? "no reason"}`);
    // A new site is given the same time for its first drill to pass.
    if (this.now() - (lastPassedAt ?? since) > maxAgeMs) problems.push(`no restore drill has passed for more than ${this.options.maxUnverifiedHours} hours`);
    problems.push(...this.warnings.values());
    return {
      status: problems.length === 0 ? "ok" : "degraded",
      lastVerifiedAt: lastPassedAt === null ? null : new Date(lastPassedAt).toISOString(),
      lastDrill: last,
      ...(problems.length > 0 ? { problems } : {}),
    };
  }

  list(limit: number): Promise<CatalogueEntry[]> {
    return this.options.catalogue.list(limit);
  }
}

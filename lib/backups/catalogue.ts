import { monotonicFactory } from "ulid";
import type { Database } from "../db/database";
import type { BackupDrillsTable, BackupsTable, SiteDatabase } from "../db/schemas/site";
import type { BackupManifest } from "./manifest";

export interface DrillRecord {
  readonly outcome: "passed" | "failed";
  readonly at: string;
  readonly durationMs: number;
  readonly bytes: number;
  readonly reason: string | null;
  readonly missingObjects: number | null;
}

export interface CatalogueEntry {
  readonly id: string;
  readonly database: string;
  readonly takenAt: string;
  readonly status: BackupsTable["status"];
  readonly bytes: number | null;
  readonly gtidPosition: string | null;
  readonly error: string | null;
  /** True once a drill has passed on this backup. */
  readonly verified: boolean;
  /** The latest drill of this backup; null before its first. */
  readonly drill: DrillRecord | null;
}

export interface NewDrill {
  readonly backupId: string | null;
  readonly database: string;
  readonly startedAt: number;
  readonly durationMs: number;
  readonly bytes: number;
  readonly outcome: "passed" | "failed";
  readonly reason: string | null;
  readonly missingObjects: number | null;
}

const ulid = monotonicFactory();

function drillRecord(row: BackupDrillsTable): DrillRecord {
  return {
    outcome: row.outcome,
    at: new Date(Number(row.started_at)).toISOString(),
    durationMs: Number(row.duration_ms),
    bytes: Number(row.bytes),
    reason: row.reason,
    missingObjects: row.missing_objects,
  };
}

/** The backup catalogue and drill history in the site database. */
export class BackupCatalogue {
  constructor(private readonly db: Database<SiteDatabase>) {}

  async backupStarted(id: string, database: string, startedAt: number): Promise<void> {
    await this.db.write((trx) =>
      trx
        .insertInto("backups")
        .values({
          id,
          database_name: database,
          started_at: startedAt,
          finished_at: null,
          status: "running",
          location: null,
          bytes: null,
          error: null,
          manifest_key: null,
          sha256: null,
          gtid_position: null,
        })
        .execute(),
    );
  }

  async backupSucceeded(manifest: BackupManifest, manifestKey: string, finishedAt: number): Promise<void> {
    await this.db.write((trx) =>
      trx
        .updateTable("backups")
        .set({
          status: "succeeded",
          finished_at: finishedAt,
          location: manifest.objectKey,
          bytes: manifest.bytes,
          manifest_key: manifestKey,
          sha256: manifest.sha256,
          gtid_position: manifest.gtidPosition,
        })
        .where("id", "=", manifest.id)
        .execute(),
    );
  }

  async backupFailed(id: string, error: string, finishedAt: number): Promise<void> {
    await this.db.write((trx) =>
      trx.updateTable("backups").set({ status: "failed", finished_at: finishedAt, error: error.slice(0, 2000) }).where("id", "=", id).execute(),
    );
  }

  async removeBackup(id: string): Promise<void> {
    await this.db.write((trx) => trx.deleteFrom("backups").where("id", "=", id).execute());
  }

  async recordDrill(drill: NewDrill): Promise<DrillRecord> {
    const row: BackupDrillsTable = {
      id: ulid(drill.startedAt),
      backup_id: drill.backupId,
      database_name: drill.database,
      started_at: drill.startedAt,
      duration_ms: drill.durationMs,
      bytes: drill.bytes,
      outcome: drill.outcome,
      reason: drill.reason === null ? null : drill.reason.slice(0, 4000),
      missing_objects: drill.missingObjects,
    };
    await this.db.write((trx) => trx.insertInto("backup_drills").values(row).execute());
    return drillRecord(row);
  }

  /** Newest first. */
  async list(limit: number): Promise<CatalogueEntry[]> {
    const backups = await this.db.readLatest((db) => db.selectFrom("backups").selectAll().orderBy("started_at", "desc").orderBy("id", "desc").limit(limit).execute());
    if (backups.length === 0) return [];
    const drills = await this.db.readLatest((db) =>
      db
        .selectFrom("backup_drills")
        .selectAll()
        .where(
          "backup_id",
          "in",
          backups.map((backup) => backup.id),
        )
        .orderBy("started_at", "asc")
        .execute(),
    );
    return backups.map((row) => {
      const own = drills.filter((drill) => drill.backup_id === row.id);
      const last = own[own.length - 1];
      return {
        id: row.id,
        database: row.database_name,
        takenAt: new Date(Number(row.started_at)).toISOString(),
        status: row.status,
        bytes: row.bytes === null ? null : Number(row.bytes),
        gtidPosition: row.gtid_position,
        error: row.error,
        verified: own.some((drill) => drill.outcome === "passed"),
        drill: last === undefined ? null : drillRecord(last),
      };
    });
  }

  /** Ids of backups on which a drill has passed. */
  async verifiedIds(database: string): Promise<Set<string>> {
    const rows = await this.db.readLatest((db) =>
      db.selectFrom("backup_drills").select("backup_id").where("database_name", "=", database).where("outcome", "=", "passed").execute(),
    );
    return new Set(rows.flatMap((row) => (row.backup_id === null ? [] : [row.backup_id])));
  }

  /** The latest drill of any database, and the time of the latest that passed. */
  async drillStatus(): Promise<{ last: (DrillRecord & { database: string }) | null; lastPassedAt: number | null }> {
    return this.db.readLatest(async (db) => {
      const last = await db.selectFrom("backup_drills").selectAll().orderBy("started_at", "desc").orderBy("id", "desc").limit(1).executeTakeFirst();
      const passed = await db
        .selectFrom("backup_drills")
        .select("started_at")
        .where("outcome", "=", "passed")
        .orderBy("started_at", "desc")
        .limit(1)
        .executeTakeFirst();
      return {
        last: last === undefined ? null : { ...drillRecord(last), database: last.database_name },
        lastPassedAt: passed === undefined ? null : Number(passed.started_at),
      };
    });
  }
}

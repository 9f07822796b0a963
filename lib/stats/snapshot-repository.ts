import { sql } from "kysely";
import { monotonicFactory } from "ulid";
import type { Database } from "../db/database";
import type { SiteDatabase } from "../db/schemas/site";

export type Period = "hour" | "day";
export const PERIOD_MS: Readonly<Record<Period, number>> = { hour: 3600_000, day: 24 * 3600_000 };

export interface Ranked {
  readonly subjectId: string;
  readonly label: string | null;
  readonly ownerLabel: string | null;
  readonly value: number;
  readonly secondValue: number;
}

/** Everything one period records. */
export interface Snapshot {
  readonly period: Period;
  readonly start: number;
  readonly takenAt: number;
  /** Metric name → value; metrics without a value for the period (nothing processed) are left out. */
  readonly values: Readonly<Record<string, number>>;
  readonly failuresByReason: readonly { reason: string; count: number }[];
  readonly topUploaders: readonly Ranked[];
  readonly topItems: readonly Ranked[];
}

export interface SeriesRow {
  readonly start: number;
  readonly value: number;
}

const num = (value: unknown) => Number(value ?? 0);
const ulid = monotonicFactory();

/** The site database's snapshot tables. */
export class SnapshotRepository {
  constructor(private readonly db: Database<SiteDatabase>) {}

  /** Writes a period's snapshot in one transaction, replacing whatever that period had. */
  async replace(snapshot: Snapshot): Promise<void> {
    const { period, start, takenAt } = snapshot;
    await this.db.write(async (trx) => {
      await trx.deleteFrom("metric_snapshots").where("period", "=", period).where("period_start", "=", start).execute();
      await trx.deleteFrom("snapshot_rankings").where("period", "=", period).where("period_start", "=", start).execute();
      const rows = [
        ...Object.entries(snapshot.values).map(([name, value]) => ({ name, value, labels: null as string | null })),
        ...snapshot.failuresByReason.map((failure) => ({ name: "failures_by_reason", value: failure.count, labels: failure.reason })),
      ].map((row) => ({ ...row, id: ulid(takenAt), taken_at: takenAt, period, period_start: start }));
      if (rows.length > 0) await trx.insertInto("metric_snapshots").values(rows).execute();
      const ranked = [
        ...snapshot.topUploaders.map((entry, index) => ({ list: "uploaders", position: index + 1, entry })),
        ...snapshot.topItems.map((entry, index) => ({ list: "items", position: index + 1, entry })),
      ].map(({ list, position, entry }) => ({
        period,
        period_start: start,
        list,
        position,
        subject_id: entry.subjectId,
        label: entry.label?.slice(0, 200) ?? null,
        owner_label: entry.ownerLabel?.slice(0, 100) ?? null,
        value: entry.value,
        second_value: entry.secondValue,
      }));
      if (ranked.length > 0) await trx.insertInto("snapshot_rankings").values(ranked).execute();
    });
  }

  /** Whether a period was taken. */
  async has(period: Period, start: number): Promise<boolean> {
    const row = await this.db.readLatest((db) =>
      db.selectFrom("metric_snapshots").select("id").where("period", "=", period).where("period_start", "=", start).limit(1).executeTakeFirst(),
    );
    return row !== undefined;
  }

  /** Drops the periods that started before `before`; returns how many rows went. */
  async prune(period: Period, before: number): Promise<number> {
    return this.db.write(async (trx) => {
      const metrics = await trx.deleteFrom("metric_snapshots").where("period", "=", period).where("period_start", "<", before).executeTakeFirst();
      const rankings = await trx.deleteFrom("snapshot_rankings").where("period", "=", period).where("period_start", "<", before).executeTakeFirst();
      return Number(metrics.numDeletedRows) + Number(rankings.numDeletedRows);
    });
  }

  /** A metric's values of the periods starting in [from, to), oldest first. */
  series(period: Period, name: string, from: number, to: number): Promise<SeriesRow[]> {
    return this.db.read(async (db) => {
      const rows = await db
        .selectFrom("metric_snapshots")
        .select(["period_start", "value"])
        .where("period", "=", period)
        .where("name", "=", name)
        .where("labels", "is", null)
        .where("period_start", ">=", from)
        .where("period_start", "<", to)
        .orderBy("period_start")
        .execute();
      return rows.map((row) => ({ start: num(row.period_start), value: num(row.value) }));
    });
  }

  /** Failures per reason over the periods starting in [from, to), most first. */
  failures(period: Period, from: number, to: number): Promise<{ reason: string; count: number }[]> {
    return this.db.read(async (db) => {
      const rows = await db
        .selectFrom("metric_snapshots")
        .select(["labels", sql<number>`sum(value)`.as("count")])
        .where("period", "=", period)
        .where("name", "=", "failures_by_reason")
        .where("period_start", ">=", from)
        .where("period_start", "<", to)
        .groupBy("labels")
        .orderBy("count", "desc")
        .orderBy("labels")
        .execute();
      return rows.map((row) => ({ reason: row.labels ?? "unknown", count: num(row.count) }));
    });
  }

  /** The top uploaders of the latest period starting in [from, to). */
  latestUploaders(period: Period, from: number, to: number): Promise<Ranked[]> {
    return this.db.read(async (db) => {
      const latest = await db
        .selectFrom("snapshot_rankings")
        .select(sql<number>`max(period_start)`.as("start"))
        .where("period", "=", period)
        .where("list", "=", "uploaders")
        .where("period_start", ">=", from)
        .where("period_start", "<", to)
        .executeTakeFirst();
      if (latest?.start === null || latest?.start === undefined) return [];
      const rows = await db
        .selectFrom("snapshot_rankings")
        .selectAll()
        .where("period", "=", period)
        .where("list", "=", "uploaders")
        .where("period_start", "=", num(latest.start))
        .orderBy("position")
        .execute();
      return rows.map((row) => ({ subjectId: row.subject_id, label: row.label, ownerLabel: row.owner_label, value: num(row.value), secondValue: num(row.second_value) }));
    });
  }

  /** The items most viewed over the periods starting in [from, to), from each period's top list. */
  topItems(period: Period, from: number, to: number, limit: number): Promise<Ranked[]> {
    return this.db.read(async (db) => {
      const rows = await db
        .selectFrom("snapshot_rankings")
        .select([
          "subject_id",
          sql<string | null>`max(label)`.as("label"),
          sql<string | null>`max(owner_label)`.as("owner_label"),
          sql<number>`sum(value)`.as("value"),
          sql<number>`sum(second_value)`.as("second_value"),
        ])
        .where("period", "=", period)
        .where("list", "=", "items")
        .where("period_start", ">=", from)
        .where("period_start", "<", to)
        .groupBy("subject_id")
        .orderBy("value", "desc")
        .orderBy("subject_id")
        .limit(limit)
        .execute();
      return rows.map((row) => ({ subjectId: row.subject_id, label: row.label, ownerLabel: row.owner_label, value: num(row.value), secondValue: num(row.second_value) }));
    });
  }
}

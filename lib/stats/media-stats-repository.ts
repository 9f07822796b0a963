import { sql } from "kysely";
import type { Database } from "../db/database";
import type { MediaDatabase } from "../db/schemas/media";
import { isUniqueViolation } from "../db/unique-violation";
import { MEDIA_KINDS, percentile } from "./metrics";
import type { ViewBatch } from "./view-store";

const DAY_MS = 24 * 3600_000;
/** Applied batch ids are kept this long: far longer than a stopped node's batch waits for the next flush. */
const FLUSH_ID_RETENTION_MS = 7 * DAY_MS;
export const TOP_LIMIT = 20;

/** What the media database says about one period [from, to). */
export interface MediaWindow {
  readonly uploads: Record<string, number>;
  /** Bytes of the items stored at `to`, per kind. */
  readonly bytes: Record<string, number>;
  readonly views: number;
  readonly uniqueViewers: number;
  /** Seconds from the start of the last attempt to ready, per kind; null when none finished. */
  readonly processingP50: Record<string, number | null>;
  readonly processingP95: Record<string, number | null>;
  readonly failures: readonly { reason: string; count: number }[];
  /** Items uploaded and not yet ready or failed at `to`. */
  readonly queueDepth: number;
  readonly topItems: readonly { mediaId: string; title: string | null; ownerId: string; views: number; uniqueViewers: number }[];
  readonly topOwners: readonly { userId: string; bytes: number; items: number }[];
}

export interface OwnerStats {
  readonly uploads: readonly { t: number; value: number }[];
  readonly items: readonly { mediaId: string; title: string | null; views: number; uniqueViewers: number }[];
}

const num = (value: unknown) => Number(value ?? 0);

/** SQL behind view counts and the media side of the statistics. */
export class MediaStatsRepository {
  constructor(private readonly db: Database<MediaDatabase>) {}

  /**
   * Adds a batch of counted views in one transaction, recording its id with it: a batch already
   * applied is left alone (false). Returns the items whose totals changed, with their owners.
   */
  async applyViews(batch: ViewBatch, now: number): Promise<{ applied: boolean; items: { id: string; ownerId: string }[] }> {
    try {
      return await this.db.write(async (trx) => {
        await trx.insertInto("media_view_flushes").values({ id: batch.id, applied_at: now }).execute();
        const totals = new Map<string, { views: number; unique: number }>();
        for (const delta of batch.deltas) {
          const existing = await trx
            .selectFrom("media_view_hours")
            .select("views")
            .where("media_id", "=", delta.mediaId)
            .where("hour", "=", delta.hour)
            .executeTakeFirst();
          if (existing) {
            await trx
              .updateTable("media_view_hours")
              .set((eb) => ({ views: eb("views", "+", delta.views), unique_viewers: eb("unique_viewers", "+", delta.uniqueViewers) }))
              .where("media_id", "=", delta.mediaId)
              .where("hour", "=", delta.hour)
              .execute();
          } else {
            await trx
              .insertInto("media_view_hours")
              .values({ media_id: delta.mediaId, hour: delta.hour, views: delta.views, unique_viewers: delta.uniqueViewers })
              .execute();
          }
          const total = totals.get(delta.mediaId) ?? { views: 0, unique: 0 };
          total.views += delta.views;
          total.unique += delta.uniqueViewers;
          totals.set(delta.mediaId, total);
        }
        for (const [id, total] of totals) {
          await trx
            .updateTable("media")
            .set((eb) => ({ views: eb("views", "+", total.views), unique_viewers: eb("unique_viewers", "+", total.unique) }))
            .where("id", "=", id)
            .execute();
        }
        await trx.deleteFrom("media_view_flushes").where("applied_at", "<", now - FLUSH_ID_RETENTION_MS).execute();
        const ids = [...totals.keys()];
        const owners = ids.length === 0 ? [] : await trx.selectFrom("media").select(["id", "owner_id"]).where("id", "in", ids).execute();
        return { applied: true, items: owners.map((row) => ({ id: row.id, ownerId: row.owner_id })) };
      });
    } catch (error) {
      // The batch id is there already: applied before, by this node or another.
      if (isUniqueViolation(error)) return { applied: false, items: [] };
      throw error;
    }
  }

  window(from: number, to: number): Promise<MediaWindow> {
    return this.db.read(async (db) => {
      const byKind = await db
        .selectFrom("media")
        .select(["kind", sql<number>`sum(case when created_at >= ${from} then 1 else 0 end)`.as("uploads"), sql<number>`sum(bytes)`.as("bytes")])
        .where("created_at", "<", to)
        .groupBy("kind")
        .execute();
      const uploads: Record<string, number> = {};
      const bytes: Record<string, number> = {};
      for (const kind of MEDIA_KINDS) {
        const row = byKind.find((r) => r.kind === kind);
        uploads[kind] = num(row?.uploads);
        bytes[kind] = num(row?.bytes);
      }
      const viewed = await db
        .selectFrom("media_view_hours")
        .select([sql<number>`sum(views)`.as("views"), sql<number>`sum(unique_viewers)`.as("unique")])
        .where("hour", ">=", from)
        .where("hour", "<", to)
        .executeTakeFirst();
      const finished = await db
        .selectFrom("media")
        .select(["kind", "processing_started_at", "finished_at"])
        .where("status", "=", "ready")
        .where("finished_at", ">=", from)
        .where("finished_at", "<", to)
        .where("processing_started_at", "is not", null)
        .execute();
      const processingP50: Record<string, number | null> = {};
      const processingP95: Record<string, number | null> = {};
      for (const kind of MEDIA_KINDS) {
        const seconds = finished.filter((r) => r.kind === kind).map((r) => (num(r.finished_at) - num(r.processing_started_at)) / 1000);
        processingP50[kind] = percentile(seconds, 50);
        processingP95[kind] = percentile(seconds, 95);
      }
      const failures = await db
        .selectFrom("media")
        .select(["reason", sql<number>`count(*)`.as("count")])
        .where("status", "=", "failed")
        .where("finished_at", ">=", from)
        .where("finished_at", "<", to)
        .groupBy("reason")
        .orderBy("reason")
        .execute();
      const queued = await db
        .selectFrom("media")
        .select(sql<number>`count(*)`.as("count"))
        .where("created_at", "<", to)
        .where((eb) =>
          eb.or([
            eb.and([eb("finished_at", "is", null), eb("status", "in", ["uploaded", "processing"])]),
            eb("finished_at", ">=", to),
          ]),
        )
        .executeTakeFirst();
      const topItems = await db
        .selectFrom("media_view_hours as h")
        .innerJoin("media as m", "m.id", "h.media_id")
        .select(["h.media_id", "m.title", "m.owner_id", sql<number>`sum(h.views)`.as("views"), sql<number>`sum(h.unique_viewers)`.as("unique")])
        .where("h.hour", ">=", from)
        .where("h.hour", "<", to)
        .groupBy(["h.media_id", "m.title", "m.owner_id"])
        .orderBy("views", "desc")
        .orderBy("h.media_id")
        .limit(TOP_LIMIT)
        .execute();
      const topOwners = await db
        .selectFrom("media")
        .select(["owner_id", sql<number>`sum(bytes)`.as("bytes"), sql<number>`count(*)`.as("items")])
        .where("created_at", "<", to)
        .groupBy("owner_id")
        .orderBy("bytes", "desc")
        .orderBy("owner_id")
        .limit(TOP_LIMIT)
        .execute();
      return {
        uploads,
        bytes,
        views: num(viewed?.views),
        uniqueViewers: num(viewed?.unique),
        processingP50,
        processingP95,
        failures: failures.map((row) => ({ reason: row.reason ?? "unknown", count: num(row.count) })),
        queueDepth: num(queued?.count),
        topItems: topItems.map((row) => ({ mediaId: row.media_id, title: row.title, ownerId: row.owner_id, views: num(row.views), uniqueViewers: num(row.unique) })),
        topOwners: topOwners.map((row) => ({ userId: row.owner_id, bytes: num(row.bytes), items: num(row.items) })),
      };
    });
  }

  /** One owner's uploads per day over the `days` before `now` (oldest first, zero days included) and their items' views. */
  ownerStats(ownerId: string, now: number, days: number): Promise<OwnerStats> {
    const today = now - (now % DAY_MS);
    const from = today - (days - 1) * DAY_MS;
    return this.db.read(async (db) => {
      const created = await db.selectFrom("media").select("created_at").where("owner_id", "=", ownerId).where("created_at", ">=", from).execute();
      const perDay = new Map<number, number>();
      for (const row of created) {
        const day = num(row.created_at) - (num(row.created_at) % DAY_MS);
        perDay.set(day, (perDay.get(day) ?? 0) + 1);
      }
      const items = await db
        .selectFrom("media")
        .select(["id", "title", "views", "unique_viewers"])
        .where("owner_id", "=", ownerId)
        .orderBy("views", "desc")
        .orderBy("created_at", "desc")
        .limit(500)
        .execute();
      return {
        uploads: Array.from({ length: days }, (_, i) => ({ t: from + i * DAY_MS, value: perDay.get(from + i * DAY_MS) ?? 0 })),
        items: items.map((row) => ({ mediaId: row.id, title: row.title, views: num(row.views), uniqueViewers: num(row.unique_viewers) })),
      };
    });
  }
}

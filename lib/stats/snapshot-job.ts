import type { MediaWindow } from "./media-stats-repository";
import { MEDIA_KINDS } from "./metrics";
import { PERIOD_MS } from "./snapshot-repository";
import type { Period, Snapshot, SnapshotRepository } from "./snapshot-repository";
import type { UsersWindow } from "./user-stats-repository";

/** What a snapshot gathers, each from the service that owns the data (no query crosses two databases). */
export interface SnapshotSources {
  users(from: number, to: number): Promise<UsersWindow>;
  media(from: number, to: number): Promise<MediaWindow>;
  /** Usernames by user id (accounts gone are left out). */
  usernames(ids: readonly string[]): Promise<ReadonlyMap<string, string>>;
  /** Measured now, so only for the period just ended: the cache hit ratio (null when unknown) and the worst replica lag. */
  live(): Promise<{ cacheHitRatio: number | null; replicaLagMaxSeconds: number | null }>;
}

export interface SnapshotRetention {
  /** Hourly periods older than this many days are dropped. */
  readonly hourlyDays: number;
  /** 0: daily periods are kept for ever. */
  readonly dailyDays: number;
}

export interface SnapshotJobOptions {
  readonly sources: SnapshotSources;
  readonly repository: SnapshotRepository;
  readonly retention: SnapshotRetention;
  readonly now?: () => number;
}

export function periodStart(period: Period, at: number): number {
  return at - (at % PERIOD_MS[period]);
}

/**
 * Hourly and daily snapshots, each period replaced when taken again. Knows no lease: the caller runs it under
 * one (the site service: the "stats-snapshots" periodic task of lib/scheduling, and the same lease for a backfill).
 */
export class SnapshotJob {
  private readonly now: () => number;

  constructor(private readonly options: SnapshotJobOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Computes one period from the sources. `live` adds what can only be measured now. */
  async compute(period: Period, start: number, live: boolean): Promise<Snapshot> {
    const end = start + PERIOD_MS[period];
    const { sources } = this.options;
    const [users, media] = await Promise.all([sources.users(start, end), sources.media(start, end)]);
    const names = await sources.usernames([...new Set([...media.topOwners.map((o) => o.userId), ...media.topItems.map((i) => i.ownerId)])]);
    const values: Record<string, number> = {
      users_total: users.total,
      users_new: users.new,
      users_active_daily: users.activeDaily,
      users_active_weekly: users.activeWeekly,
      users_active_monthly: users.activeMonthly,
      views: media.views,
      unique_viewers: media.uniqueViewers,
      failures: media.failures.reduce((sum, failure) => sum + failure.count, 0),
      queue_depth: media.queueDepth,
    };
    for (const kind of MEDIA_KINDS) {
      values[`uploads_${kind}`] = media.uploads[kind] ?? 0;
      values[`bytes_${kind}`] = media.bytes[kind] ?? 0;
      const p50 = media.processingP50[kind];
      const p95 = media.processingP95[kind];
      if (p50 !== null && p50 !== undefined) values[`processing_p50_${kind}`] = p50;
      if (p95 !== null && p95 !== undefined) values[`processing_p95_${kind}`] = p95;
    }
    if (live) {
      const measured = await sources.live();
      if (measured.cacheHitRatio !== null) values.cache_hit_ratio = measured.cacheHitRatio;
      if (measured.replicaLagMaxSeconds !== null) values.replica_lag_max_seconds = measured.replicaLagMaxSeconds;
    }
    return {
      period,
      start,
      takenAt: this.now(),
      values,
      failuresByReason: media.failures,
      topUploaders: media.topOwners.map((owner) => ({
        subjectId: owner.userId,
        label: null,
        ownerLabel: names.get(owner.userId) ?? null,
        value: owner.bytes,
        secondValue: owner.items,
      })),
      topItems: media.topItems.map((item) => ({
        subjectId: item.mediaId,
        label: item.title,
        ownerLabel: names.get(item.ownerId) ?? null,
        value: item.views,
        secondValue: item.uniqueViewers,
      })),
    };
  }

  /** Takes one period. */
  async take(period: Period, start: number, live = false): Promise<void> {
    await this.options.repository.replace(await this.compute(period, start, live));
  }

  /** The scheduled round: the hour just ended (measured live), the day just ended once it has, then retention. Returns the periods taken. */
  async runDue(): Promise<{ period: Period; start: number }[]> {
    const now = this.now();
    const taken: { period: Period; start: number }[] = [];
    const hour = periodStart("hour", now) - PERIOD_MS.hour;
    await this.options.repository.replace(await this.compute("hour", hour, true));
    taken.push({ period: "hour", start: hour });
    const day = periodStart("day", now) - PERIOD_MS.day;
    if (!(await this.options.repository.has("day", day))) {
      await this.options.repository.replace(await this.compute("day", day, false));
      taken.push({ period: "day", start: day });
    }
    await this.prune(now);
    return taken;
  }

  /** Computes every daily period from `from` up to the last one ended, and the hourly ones still within retention, from the rows there are. */
  async backfill(from: number, onProgress?: (done: number, total: number) => void): Promise<number> {
    const now = this.now();
    const periods: { period: Period; start: number }[] = [];
    for (const period of ["day", "hour"] as const) {
      const last = periodStart(period, now) - PERIOD_MS[period];
      const first = period === "hour" ? Math.max(from, now - this.options.retention.hourlyDays * PERIOD_MS.day) : from;
      for (let start = periodStart(period, first); start <= last; start += PERIOD_MS[period]) periods.push({ period, start });
    }
    for (const [index, { period, start }] of periods.entries()) {
      await this.options.repository.replace(await this.compute(period, start, false));
      onProgress?.(index + 1, periods.length);
    }
    await this.prune(now);
    return periods.length;
  }

  private async prune(now: number): Promise<void> {
    const { hourlyDays, dailyDays } = this.options.retention;
    await this.options.repository.prune("hour", now - hourlyDays * PERIOD_MS.day);
    if (dailyDays > 0) await this.options.repository.prune("day", now - dailyDays * PERIOD_MS.day);
  }
}

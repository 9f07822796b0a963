import { ValidationError } from "../errors";
import { autoBucket, bucketStarts, BUCKETS, combine, describe, METRICS } from "./metrics";
import type { Bucket } from "./metrics";
import type { Period, SnapshotRepository } from "./snapshot-repository";
import { TOP_LIMIT } from "./media-stats-repository";

const HOUR = 3600_000;
const DAY = 24 * HOUR;

export const SUMMARY_RANGES = { "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "12m": 365 * DAY } as const;
export type SummaryRange = keyof typeof SUMMARY_RANGES;

/** The tiles of the summary, in the order the dashboard shows them. */
export const KPI_METRICS = [
  "users_total",
  "users_new",
  "users_active_monthly",
  "uploads_image",
  "uploads_video",
  "uploads_audio",
  "views",
  "unique_viewers",
  "failures",
  "bytes_image",
  "bytes_video",
  "bytes_audio",
] as const;

export interface Point {
  readonly t: string;
  readonly value: number | null;
}

export interface Series {
  readonly metric: string;
  readonly label: string;
  readonly description: string;
  readonly bucket: Bucket;
  readonly points: readonly Point[];
}

export interface Kpi {
  readonly metric: string;
  readonly label: string;
  readonly value: number | null;
  readonly previous: number | null;
  /** (value - previous) / previous; null when previous is 0 or unknown. */
  readonly change: number | null;
}

export interface Summary {
  readonly range: { from: string; to: string; bucket: Bucket };
  readonly previous: { from: string; to: string };
  readonly kpis: readonly Kpi[];
  readonly topUploaders: readonly { userId: string; name: string | null; bytes: number; items: number }[];
  readonly topItems: readonly { mediaId: string; title: string | null; ownerName: string | null; views: number; uniqueViewers: number }[];
  readonly failures: readonly { reason: string; count: number }[];
}

/** Hourly snapshots serve buckets under a day (and KPIs over ranges within hourly retention); daily ones the rest. */
function sourcePeriod(bucketMs: number): Period {
  return bucketMs >= DAY ? "day" : "hour";
}

export function parseTime(value: string, field: string): number {
  const at = Date.parse(value);
  if (!Number.isFinite(at)) throw new ValidationError(`${field} is not a date and time.`, { [field]: "must be an ISO 8601 date and time" });
  return at;
}

export function checkRange(from: number, to: number): void {
  if (to <= from) throw new ValidationError("The range ends before it starts.", { to: "must be after from" });
  if (to - from > 20 * 365 * DAY) throw new ValidationError("The range is too long.", { from: "must be at most 20 years before to" });
}

/** Reads of the snapshots: a metric over time, and the dashboard's summary. */
export class StatsQueries {
  constructor(
    private readonly repository: SnapshotRepository,
    private readonly hourlyRetentionDays: number,
    private readonly now: () => number = Date.now,
  ) {}

  async series(metric: string, from: number, to: number, requested: Bucket | "auto"): Promise<Series> {
    const info = METRICS[metric];
    if (!info) throw new ValidationError("Unknown metric.", { metric: "is not a metric this site records" });
    checkRange(from, to);
    const bucket = requested === "auto" ? autoBucket(to - from) : requested;
    const starts = bucketStarts(from, to, bucket);
    if (starts.length > 5000) throw new ValidationError("Too many points: choose a larger bucket.", { bucket: "gives more than 5000 points over this range" });
    const size = BUCKETS[bucket].ms;
    const rows = await this.repository.series(sourcePeriod(size), metric, starts[0] ?? from, to);
    const grouped = new Map<number, number[]>();
    for (const row of rows) {
      const start = row.start - (row.start % size);
      grouped.set(start, [...(grouped.get(start) ?? []), row.value]);
    }
    return {
      metric,
      label: info.label,
      description: describe(metric, bucket),
      bucket,
      points: starts.map((start) => ({ t: new Date(start).toISOString(), value: combine(info.combine, grouped.get(start) ?? []) })),
    };
  }

  /** One metric over [from, to): the combination of its periods. */
  private async total(metric: string, period: Period, from: number, to: number): Promise<number | null> {
    const info = METRICS[metric];
    if (!info) return null;
    const rows = await this.repository.series(period, metric, from, to);
    return combine(info.combine, rows.map((row) => row.value));
  }

  async summary(range: { from: number; to: number }): Promise<Summary> {
    const { from, to } = range;
    checkRange(from, to);
    const length = to - from;
    const previousFrom = from - length;
    const period: Period = this.now() - previousFrom <= this.hourlyRetentionDays * DAY && length < 60 * DAY ? "hour" : "day";
    const kpis = await Promise.all(
      KPI_METRICS.map(async (metric) => {
        const [value, previous] = await Promise.all([this.total(metric, period, from, to), this.total(metric, period, previousFrom, from)]);
        const change = value === null || previous === null || previous === 0 ? null : (value - previous) / previous;
        return { metric, label: METRICS[metric]?.label ?? metric, value, previous, change };
      }),
    );
    const [uploaders, items, failures] = await Promise.all([
      this.repository.latestUploaders(period, from, to),
      this.repository.topItems(period, from, to, TOP_LIMIT),
      this.repository.failures(period, from, to),
    ]);
    return {
      range: { from: new Date(from).toISOString(), to: new Date(to).toISOString(), bucket: autoBucket(length) },
      previous: { from: new Date(previousFrom).toISOString(), to: new Date(from).toISOString() },
      kpis,
      topUploaders: uploaders.map((entry) => ({ userId: entry.subjectId, name: entry.ownerLabel, bytes: entry.value, items: entry.secondValue })),
      topItems: items.map((entry) => ({
        mediaId: entry.subjectId,
        title: entry.label,
        ownerName: entry.ownerLabel,
        views: entry.value,
        uniqueViewers: entry.secondValue,
      })),
      failures,
    };
  }
}

/** A named range ending now. */
export function rangeOf(name: SummaryRange, now: number): { from: number; to: number } {
  return { from: now - SUMMARY_RANGES[name], to: now };
}

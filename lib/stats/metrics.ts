/** The metrics a snapshot records: names, the words the dashboard shows, and how values of several periods combine. */

export const MEDIA_KINDS = ["image", "video", "audio"] as const;

/** sum: a count of events in the period; last: a level at the period's end; mean / max over the periods of a bucket. */
export type Combine = "sum" | "last" | "mean" | "max";

export interface MetricInfo {
  readonly label: string;
  /** One plain sentence for readers who are not technical; `{per}` becomes the bucket ("day", "hour", ...). */
  readonly description: string;
  readonly combine: Combine;
}

const KIND_WORDS = { image: "images", video: "videos", audio: "audio files" } as const;

function perKind(make: (kind: (typeof MEDIA_KINDS)[number], words: string) => [string, MetricInfo]): [string, MetricInfo][] {
  return MEDIA_KINDS.map((kind) => make(kind, KIND_WORDS[kind]));
}

export const METRICS: Readonly<Record<string, MetricInfo>> = Object.fromEntries([
  ["users_total", { label: "Members", description: "How many members the site has.", combine: "last" }],
  ["users_new", { label: "New members", description: "New members per {per}.", combine: "sum" }],
  ["users_active_daily", { label: "Active members (day)", description: "Members who used the site in the last 24 hours.", combine: "last" }],
  ["users_active_weekly", { label: "Active members (week)", description: "Members who used the site in the last 7 days.", combine: "last" }],
  ["users_active_monthly", { label: "Active members (month)", description: "Members who used the site in the last 30 days.", combine: "last" }],
  ...perKind((kind, words) => [`uploads_${kind}`, { label: `Uploaded ${words}`, description: `New ${words} uploaded per {per}.`, combine: "sum" }]),
  ...perKind((kind, words) => [`bytes_${kind}`, { label: `Storage for ${words}`, description: `Space taken by all ${words}, in bytes.`, combine: "last" }]),
  ["views", { label: "Views", description: "Times someone opened another member's item, per {per}.", combine: "sum" }],
  ["unique_viewers", { label: "Unique viewers", description: "Different people who opened an item per {per} (each person counted once a day per item).", combine: "sum" }],
  ...perKind((kind, words) => [
    `processing_p50_${kind}`,
    { label: `Typical processing time (${kind})`, description: `Seconds it usually takes to get ${words} ready after upload.`, combine: "mean" },
  ]),
  ...perKind((kind, words) => [
    `processing_p95_${kind}`,
    { label: `Slow processing time (${kind})`, description: `Seconds that only the slowest 5 % of ${words} took to get ready.`, combine: "max" },
  ]),
  ["failures", { label: "Failed uploads", description: "Uploads that could not be processed, per {per}.", combine: "sum" }],
  ["queue_depth", { label: "Waiting uploads", description: "Uploads waiting to be processed at the end of each {per}.", combine: "last" }],
  ["cache_hit_ratio", { label: "Cache hit ratio", description: "Share of reads answered from the cache (1 means all of them).", combine: "mean" }],
  ["replica_lag_max_seconds", { label: "Worst replica delay", description: "Seconds the slowest database copy was behind, at worst.", combine: "max" }],
]);

export const METRIC_NAMES: readonly string[] = Object.keys(METRICS);

/** The metric's sentence for a bucket, e.g. "New members per day". */
export function describe(metric: string, bucket: Bucket): string {
  return (METRICS[metric]?.description ?? "").replace("{per}", BUCKETS[bucket].words);
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const BUCKETS = {
  "1m": { ms: MINUTE, words: "minute" },
  "10m": { ms: 10 * MINUTE, words: "10 minutes" },
  "1h": { ms: HOUR, words: "hour" },
  "6h": { ms: 6 * HOUR, words: "6 hours" },
  "12h": { ms: 12 * HOUR, words: "12 hours" },
  "1d": { ms: DAY, words: "day" },
  "2d": { ms: 2 * DAY, words: "2 days" },
  "7d": { ms: 7 * DAY, words: "week" },
  "1mo": { ms: 30 * DAY, words: "month" },
  "6mo": { ms: 182 * DAY, words: "6 months" },
} as const;

export type Bucket = keyof typeof BUCKETS;
export const BUCKET_NAMES = Object.keys(BUCKETS) as Bucket[];

/** PeerTube's rule: the bucket grows with the range, from 1 minute (up to 3 hours) to 6 months (6 years or more). */
export function autoBucket(rangeMs: number): Bucket {
  const year = 365 * DAY;
  if (rangeMs >= 6 * year) return "6mo";
  if (rangeMs >= 2 * year) return "1mo";
  if (rangeMs >= 180 * DAY) return "7d";
  if (rangeMs >= 60 * DAY) return "2d";
  if (rangeMs >= 14 * DAY) return "1d";
  if (rangeMs >= 4 * DAY) return "12h";
  if (rangeMs >= 2 * DAY) return "6h";
  if (rangeMs >= DAY) return "1h";
  if (rangeMs > 3 * HOUR) return "10m";
  return "1m";
}

/** Calendar-free bucket starts (UTC, aligned on the epoch) from `from` to `to`. */
export function bucketStarts(from: number, to: number, bucket: Bucket): number[] {
  const size = BUCKETS[bucket].ms;
  const starts: number[] = [];
  for (let start = from - (from % size); start < to; start += size) starts.push(start);
  return starts;
}

/** Combines the values of the periods that fall into one bucket (in time order); null when there are none. */
export function combine(how: Combine, values: readonly number[]): number | null {
  if (values.length === 0) return how === "sum" ? 0 : null;
  switch (how) {
    case "sum":
      return values.reduce((a, b) => a + b, 0);
    case "last":
      return values[values.length - 1] as number;
    case "max":
      return Math.max(...values);
    case "mean":
      return values.reduce((a, b) => a + b, 0) / values.length;
  }
}

/** Nearest-rank percentile of unsorted values; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** The statistics API as the dashboard, the report and "My stats" use it, and the words for its numbers. */
import { ApiError, errorFrom, formatBytes } from "./api";

export type RangePreset = "24h" | "7d" | "30d" | "12m";
export const RANGE_PRESETS: readonly { value: RangePreset; label: string; previous: string }[] = [
  { value: "24h", label: "Last 24 hours", previous: "the 24 hours before" },
  { value: "7d", label: "Last 7 days", previous: "the 7 days before" },
  { value: "30d", label: "Last 30 days", previous: "the 30 days before" },
  { value: "12m", label: "Last 12 months", previous: "the 12 months before" },
];

/** A preset, or a custom span given as ISO dates (from inclusive, to exclusive). */
export type StatsRange = { preset: RangePreset } | { from: string; to: string };

export interface Point {
  t: string | number;
  value: number | null;
}

export interface Kpi {
  metric: string;
  label: string;
  value: number | null;
  previous: number | null;
  change: number | null;
}

export interface Summary {
  range: { from: string; to: string; bucket: string };
  previous: { from: string; to: string };
  kpis: Kpi[];
  topUploaders: { userId: string; name: string | null; bytes: number; items: number }[];
  topItems: { mediaId: string; title: string | null; ownerName: string | null; views: number; uniqueViewers: number }[];
  failures: { reason: string; count: number }[];
}

export interface Series {
  metric: string;
  label: string;
  description: string;
  bucket: string;
  points: Point[];
}

export interface MyStats {
  usedBytes: number;
  quotaBytes: number;
  uploads: Point[];
  items: { mediaId: string; title: string | null; views: number; uniqueViewers: number }[];
}

/** The query of a range: "range=7d" or "from=…&to=…" (also the stats pages' own address query). */
export function rangeQuery(range: StatsRange): string {
  if ("preset" in range) return `range=${encodeURIComponent(range.preset)}`;
  return `from=${encodeURIComponent(range.from)}&to=${encodeURIComponent(range.to)}`;
}

export function summaryPath(range: StatsRange, format?: "csv"): string {
  return `/api/admin/stats/summary?${rangeQuery(range)}${format ? `&format=${format}` : ""}`;
}

export function seriesPath(metric: string, from: string, to: string, format?: "csv"): string {
  const query = `metric=${encodeURIComponent(metric)}&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&bucket=auto`;
  return `/api/admin/stats?${query}${format ? `&format=${format}` : ""}`;
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" }).catch(() => {
    throw new ApiError(0, "network", "Shoal could not be reached. Check your connection and try again.");
  });
  const text = await response.text();
  if (!response.ok) throw errorFrom(response.status, text, response.headers.get("Retry-After"));
  return JSON.parse(text) as T;
}

export const statsApi = {
  summary: (range: StatsRange) => getJson<Summary>(summaryPath(range)),
  series: (metric: string, from: string, to: string) => getJson<Series>(seriesPath(metric, from, to)),
  mine: () => getJson<MyStats>("/api/me/stats"),
};

export function timeOf(point: Point): number {
  return typeof point.t === "number" ? point.t : Date.parse(point.t);
}

/** A bucket name from the server ("1h", "6h", "1d", "7d", "1mo", "hour", "day"…) as words: "hour", "6 hours", "week". */
export function bucketWords(bucket: string): string {
  const named: Record<string, string> = { minute: "minute", hour: "hour", day: "day", week: "week", month: "month", year: "year" };
  if (named[bucket]) return named[bucket];
  const match = /^(\d+)\s*(mo|min|m|h|d|w|M|y)$/.exec(bucket.trim());
  if (!match) return bucket;
  const count = Number(match[1]);
  const unit = { min: "minute", m: "minute", h: "hour", d: "day", w: "week", mo: "month", M: "month", y: "year" }[match[2]] ?? match[2];
  if (unit === "day" && count === 7) return "week";
  if (count === 1) return unit;
  return `${count} ${unit}s`;
}

export type Unit = "count" | "bytes" | "seconds" | "ratio";

export function unitOf(metric: string): Unit {
  if (metric.startsWith("bytes_") || metric.endsWith("Bytes")) return "bytes";
  if (metric.startsWith("processing_") || metric.endsWith("_seconds")) return "seconds";
  if (metric.endsWith("_ratio")) return "ratio";
  return "count";
}

export function formatValue(value: number | null | undefined, unit: Unit): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (unit === "bytes") return formatBytes(value);
  if (unit === "ratio") return `${(value * 100).toFixed(value >= 0.995 || value === 0 ? 0 : 1)} %`;
  if (unit === "seconds") return value < 10 ? `${value.toFixed(1)} s` : `${Math.round(value).toLocaleString("en")} s`;
  return Math.round(value) === value ? value.toLocaleString("en") : value.toFixed(1);
}

/** "+12 %", "−3 %", "no change"; null when there is nothing to compare with. */
export function formatChange(change: number | null): string | null {
  if (change === null || !Number.isFinite(change)) return null;
  const percent = Math.round(change * 100);
  if (percent === 0) return "no change";
  return `${percent > 0 ? "+" : "−"}${Math.abs(percent)} %`;
}

export function formatTime(time: number, bucket: string): string {
  const date = new Date(time);
  const words = bucketWords(bucket);
  if (/minute|hour/.test(words)) return date.toLocaleString("en-GB", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  if (/month|year/.test(words)) return date.toLocaleDateString("en-GB", { month: "long", year: "numeric" });
  return date.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" });
}

/** One field; text starting with a formula character gets a quote first, so that spreadsheets show it as text (as the API's CSV does). */
function csvCell(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV: a header row, then one line per row. */
export function toCsv(header: readonly string[], rows: readonly (readonly (string | number | null | undefined)[])[]): string {
  return [header, ...rows].map((row) => row.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

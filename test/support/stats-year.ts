/**
 * A year of snapshots for a site that grew steadily: one daily snapshot per day for 365 days and hourly
 * ones for the last 14 days (or `hourlyDays`; bench/stats.ts writes a year of them), written straight into the site database through the snapshot repository.
 * The figures are a fixed function of the day, so two runs on the same day write the same numbers.
 */
import type { Database } from "../../lib/db/database";
import type { SiteDatabase } from "../../lib/db/schemas/site";
import { PERIOD_MS, SnapshotRepository } from "../../lib/stats/snapshot-repository";
import type { Period, Ranked, Snapshot } from "../../lib/stats/snapshot-repository";

const KINDS = ["image", "video", "audio"] as const;
const MiB = 1024 * 1024;

/** Day `day` of the year (0 = a year ago): a smooth, seasonal, growing site. */
function dayValues(day: number, share: number): Record<string, number> {
  const season = 1 + 0.35 * Math.sin((2 * Math.PI * day) / 365);
  const weekday = 1 + 0.2 * Math.sin((2 * Math.PI * day) / 7);
  const members = Math.round(40 + day * 3.2);
  const values: Record<string, number> = {
    users_total: members,
    users_new: Math.round(3 * season * share),
    users_active_daily: Math.round(members * 0.18 * weekday),
    users_active_weekly: Math.round(members * 0.42),
    users_active_monthly: Math.round(members * 0.66),
    views: Math.round(420 * season * weekday * share),
    unique_viewers: Math.round(150 * season * weekday * share),
    failures: Math.round((day % 9 === 0 ? 3 : 1) * share),
    queue_depth: 2 + (day % 5),
    cache_hit_ratio: 0.86 + 0.06 * Math.sin(day / 11),
    replica_lag_max_seconds: 0.4 + (day % 13) / 10,
  };
  KINDS.forEach((kind, index) => {
    const perDay = [14, 4, 6][index] * season;
    values[`uploads_${kind}`] = Math.round(perDay * share);
    values[`bytes_${kind}`] = Math.round((day + 1) * [14 * 3, 4 * 180, 6 * 8][index] * MiB);
    values[`processing_p50_${kind}`] = [1.2, 38, 6][index] * (1 + 0.1 * Math.sin(day / 3));
    values[`processing_p95_${kind}`] = [3.5, 140, 19][index] * (1 + 0.15 * Math.sin(day / 4));
  });
  return values;
}

export const UPLOADER_NAMES = ["marta", "jonas", "liwei", "amara", "tomasz"];
const ITEMS = ["Harbour at dawn", "Choir rehearsal", "Kids' football final", "Lighthouse time-lapse", "Market day"];

function rankings(day: number, share: number, uploaderIds: readonly string[]): { topUploaders: Ranked[]; topItems: Ranked[] } {
  const topUploaders = UPLOADER_NAMES.map((name, index) => ({
    subjectId: uploaderIds[index] ?? `01UPLOADER${String(index).padStart(16, "0")}`,
    // As the snapshot job writes it: an uploader's name is the owner label; none for an id that is no account.
    label: null,
    ownerLabel: uploaderIds[index] === undefined ? null : name,
    value: Math.round((5 - index) * (day + 1) * 40 * MiB),
    secondValue: (5 - index) * (day + 1),
  }));
  const topItems = ITEMS.map((title, index) => ({
    subjectId: `01ITEM${String(index).padStart(20, "0")}`,
    label: title,
    ownerLabel: UPLOADER_NAMES[index % UPLOADER_NAMES.length] ?? null,
    value: Math.round((60 - index * 9) * share),
    secondValue: Math.round((25 - index * 4) * share),
  }));
  return { topUploaders, topItems };
}

function snapshot(period: Period, start: number, firstDay: number, uploaderIds: readonly string[]): Snapshot {
  const day = Math.floor((start - firstDay) / PERIOD_MS.day);
  const share = period === "day" ? 1 : 1 / 24;
  const values = dayValues(day, share);
  const failures = values.failures ?? 0;
  const failuresByReason = failures > 0
    ? [{ reason: "corrupt", count: Math.ceil(failures / 2) }, { reason: "timeout", count: Math.floor(failures / 2) }].filter((row) => row.count > 0)
    : [];
  return { period, start, takenAt: start + PERIOD_MS[period], values, failuresByReason, ...rankings(day, share, uploaderIds) };
}

/**
 * Writes the year; returns the first day's start (UTC midnight a year before today). `uploaderIds`: the
 * accounts of UPLOADER_NAMES, in that order, so that the top uploaders are named.
 */
export async function seedYearOfSnapshots(db: Database<SiteDatabase>, uploaderIds: readonly string[] = [], now = Date.now(), hourlyDays = 14): Promise<number> {
  const repository = new SnapshotRepository(db);
  const today = now - (now % PERIOD_MS.day);
  const firstDay = today - 365 * PERIOD_MS.day;
  for (let start = firstDay; start < today; start += PERIOD_MS.day) await repository.replace(snapshot("day", start, firstDay, uploaderIds));
  const thisHour = now - (now % PERIOD_MS.hour);
  for (let start = thisHour - hourlyDays * PERIOD_MS.day; start < thisHour; start += PERIOD_MS.hour) await repository.replace(snapshot("hour", start, firstDay, uploaderIds));
  return firstDay;
}

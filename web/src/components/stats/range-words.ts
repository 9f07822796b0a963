import { RANGE_PRESETS } from "../../stats-api";
import type { StatsRange } from "../../stats-api";

function dayWords(iso: string): string {
  return new Date(iso).toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
}

/** "Last 7 days" or "1 March 2026 to 31 March 2026". */
export function rangeTitle(range: StatsRange): string {
  if ("preset" in range) return RANGE_PRESETS.find((preset) => preset.value === range.preset)?.label ?? range.preset;
  return `${dayWords(range.from)} to ${dayWords(new Date(Date.parse(range.to) - 1).toISOString())}`;
}

/** The span the server settled on, in days: "27 November 2026 to 4 December 2026". */
export function spanWords(from: string, to: string): string {
  return `${dayWords(from)} to ${dayWords(to)}`;
}

/** The period compared against, in words. */
export function previousWords(range: StatsRange): string {
  if ("preset" in range) return RANGE_PRESETS.find((preset) => preset.value === range.preset)?.previous ?? "the period before";
  return "the same length of time before";
}

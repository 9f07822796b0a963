import type { Series, Summary } from "./stats-queries";

/** One CSV field (RFC 4180), with a leading formula character defused (a "'" before it) so that spreadsheets show it as text. */
function field(value: string | number | null): string {
  if (value === null) return "";
  if (typeof value === "number") return String(value);
  // Ids may start with "-" (nanoids); other text starting with "-" could be a formula.
  const formula = /^[=+@\t\r]/.test(value) || (value.startsWith("-") && !/^[A-Za-z0-9_-]+$/.test(value));
  const text = formula ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function lines(rows: readonly (readonly (string | number | null)[])[]): string {
  return rows.map((row) => row.map(field).join(",")).join("\r\n") + "\r\n";
}

/** A metric over time: `t,value`, one row per point. */
export function seriesCsv(series: Series): string {
  return lines([["t", series.metric], ...series.points.map((point) => [point.t, point.value])]);
}

/**
 * The summary as one CSV of sections, each a header row then its rows, with an empty line between:
 * `section,metric,label,value,previous,change` for the KPIs, then `section,userId,name,bytes,items`
 * (top uploaders), `section,mediaId,title,ownerName,views,uniqueViewers` (top items) and
 * `section,reason,count` (failures). The first column names the section on every row, so that a
 * filter on it gives one table.
 */
export function summaryCsv(summary: Summary): string {
  const range = lines([
    ["section", "from", "to", "previousFrom", "previousTo"],
    ["range", summary.range.from, summary.range.to, summary.previous.from, summary.previous.to],
  ]);
  const kpis = lines([
    ["section", "metric", "label", "value", "previous", "change"],
    ...summary.kpis.map((kpi) => ["kpi", kpi.metric, kpi.label, kpi.value, kpi.previous, kpi.change]),
  ]);
  const uploaders = lines([
    ["section", "userId", "name", "bytes", "items"],
    ...summary.topUploaders.map((row) => ["top_uploader", row.userId, row.name, row.bytes, row.items]),
  ]);
  const items = lines([
    ["section", "mediaId", "title", "ownerName", "views", "uniqueViewers"],
    ...summary.topItems.map((row) => ["top_item", row.mediaId, row.title, row.ownerName, row.views, row.uniqueViewers]),
  ]);
  const failures = lines([["section", "reason", "count"], ...summary.failures.map((row) => ["failure", row.reason, row.count])]);
  return [range, kpis, uploaders, items, failures].join("\r\n");
}

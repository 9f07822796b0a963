import type { CatalogueEntry } from "./catalogue";

const MiB = 1024 * 1024;

/** The backup catalogue as a text table for the REPL: id, database, time, size, last drill. */
export function formatCatalogue(entries: readonly CatalogueEntry[]): string {
  if (entries.length === 0) return "no backups yet";
  const rows = entries.map((entry) => [
    entry.id,
    entry.database,
    entry.takenAt,
    entry.bytes === null ? "-" : `${(entry.bytes / MiB).toFixed(2)} MiB`,
    entry.status === "succeeded" ? (entry.drill === null ? "not drilled" : `${entry.drill.outcome} ${entry.drill.at}${entry.drill.reason ? `: ${entry.drill.reason}` : ""}`) : `${entry.status}${entry.error ? `: ${entry.error}` : ""}`,
  ]);
  const header = ["id", "database", "taken", "size", "drill"];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

import type { DatabaseHealth } from "../db/database";

export interface NodeDatabaseStatus {
  readonly nodeID: string;
  readonly database: string;
  readonly health: DatabaseHealth;
}

/** One line per server as each node sees it, for operators. */
export function formatReplicaTable(statuses: readonly NodeDatabaseStatus[]): string {
  const header = ["node", "database", "role", "server", "reachable", "lag s", "in rotation"];
  const rows: string[][] = [];
  for (const { nodeID, database, health } of statuses) {
    rows.push([nodeID, database, "primary", health.primary.server, health.primary.reachable ? "yes" : "NO", "-", "-"]);
    for (const replica of health.replicas) {
      rows.push([
        nodeID,
        database,
        "replica",
        replica.server,
        replica.reachable ? "yes" : "NO",
        replica.lagSeconds === null ? "?" : replica.lagSeconds.toFixed(1),
        replica.inRotation ? "yes" : "NO",
      ]);
    }
  }
  if (rows.length === 0) return "No node runs a database service.";
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

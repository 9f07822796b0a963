/** Tables of the site database. Times are milliseconds since the epoch. */
export interface AuditLogTable {
  /** Time-ordered id (ULID), so the newest-first listing pages by id alone. */
  id: string;
  at: number;
  actor_id: string | null;
  action: string;
  subject_id: string | null;
  ip: string | null;
  /** JSON object with details that depend on the action. */
  detail: string | null;
}

export interface MetricSnapshotsTable {
  id: string;
  taken_at: number;
  name: string;
  value: number;
  /** A label of the value, e.g. the reason of `failures_by_reason`; null for most metrics. */
  labels: string | null;
  /** "hour" or "day": the period [period_start, period_start + its length) the value describes. */
  period: string;
  period_start: number;
}

/** A period's top lists: `uploaders` (value: bytes, second_value: items) and `items` (views, unique viewers). */
export interface SnapshotRankingsTable {
  period: string;
  period_start: number;
  list: string;
  position: number;
  subject_id: string;
  label: string | null;
  owner_label: string | null;
  value: number;
  second_value: number;
}

export interface BackupsTable {
  id: string;
  database_name: string;
  started_at: number;
  finished_at: number | null;
  status: "running" | "succeeded" | "failed";
  location: string | null;
  bytes: number | null;
  error: string | null;
}

export interface SiteDatabase {
  audit_log: AuditLogTable;
  metric_snapshots: MetricSnapshotsTable;
  snapshot_rankings: SnapshotRankingsTable;
  backups: BackupsTable;
}

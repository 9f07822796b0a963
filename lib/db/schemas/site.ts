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
  labels: string | null;
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
  backups: BackupsTable;
}

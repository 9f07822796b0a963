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
  /** The signed manifest beside the stored file (location). */
  manifest_key: string | null;
  sha256: string | null;
  gtid_position: string | null;
}

/** One restore drill: a backup restored into scratch space and checked against its manifest. */
export interface BackupDrillsTable {
  id: string;
  /** Null when no backup could be read at all. */
  backup_id: string | null;
  database_name: string;
  started_at: number;
  duration_ms: number;
  /** Stored bytes read. */
  bytes: number;
  outcome: "passed" | "failed";
  reason: string | null;
  /** media: object keys the restored catalogue names that storage lacks. */
  missing_objects: number | null;
}

export interface SiteDatabase {
  audit_log: AuditLogTable;
  metric_snapshots: MetricSnapshotsTable;
  snapshot_rankings: SnapshotRankingsTable;
  backups: BackupsTable;
  backup_drills: BackupDrillsTable;
}

import type { Migrations } from "../../lib/db/database";
import * as auditMetricsBackups from "./0001_audit_metrics_backups";
import * as snapshotPeriodsAndRankings from "./0002_snapshot_periods_and_rankings";
import * as backupDrills from "./0003_backup_drills";

export const siteMigrations: Migrations = {
  "0001_audit_metrics_backups": auditMetricsBackups,
  "0002_snapshot_periods_and_rankings": snapshotPeriodsAndRankings,
  "0003_backup_drills": backupDrills,
};

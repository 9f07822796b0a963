import type { Migrations } from "../../lib/db/database";
import * as auditMetricsBackups from "./0001_audit_metrics_backups";

export const siteMigrations: Migrations = {
  "0001_audit_metrics_backups": auditMetricsBackups,
};

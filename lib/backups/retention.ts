/** A stored backup as retention sees it. */
export interface RetainedBackup {
  readonly id: string;
  /** Milliseconds since the epoch. */
  readonly takenAt: number;
  /** A drill has passed on it. */
  readonly verified: boolean;
}

export interface RetentionPolicy {
  readonly keepDaily: number;
  readonly keepWeekly: number;
  readonly keepMonthly: number;
}

const DAY_MS = 86_400_000;

const dayOf = (time: number): string => new Date(time).toISOString().slice(0, 10);
const monthOf = (time: number): string => new Date(time).toISOString().slice(0, 7);

/** ISO week (Monday first, UTC): the year and week number of the week's Thursday. */
function weekOf(time: number): string {
  const day = Math.floor(time / DAY_MS);
  // 1970-01-01 was a Thursday: weekday 0 = Monday.
  const weekday = (day + 3) % 7;
  const thursday = new Date((day - weekday + 3) * DAY_MS);
  const yearStart = Date.UTC(thursday.getUTCFullYear(), 0, 1);
  const week = Math.floor((thursday.getTime() - yearStart) / DAY_MS / 7) + 1;
  return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

/** The newest backup of each of the newest `count` periods that have one. */
function newestPerPeriod(newestFirst: readonly RetainedBackup[], period: (time: number) => string, count: number): string[] {
  const seen = new Set<string>();
  const kept: string[] = [];
  for (const backup of newestFirst) {
    if (seen.size >= count) break;
    const key = period(backup.takenAt);
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(backup.id);
  }
  return kept;
}

/**
 * Grandfather-father-son retention of one database's backups: the newest of each of the last
 * `keepDaily` days, `keepWeekly` ISO weeks and `keepMonthly` months that have a backup (UTC), and
 * always the newest backup a drill has passed on, so that a proven restore point is never lost to
 * a run of unverified ones. Answers the ids to delete, oldest first.
 */
export function backupsToDelete(backups: readonly RetainedBackup[], policy: RetentionPolicy): string[] {
  const newestFirst = [...backups].sort((a, b) => b.takenAt - a.takenAt || b.id.localeCompare(a.id));
  const keep = new Set<string>([
    ...newestPerPeriod(newestFirst, dayOf, policy.keepDaily),
    ...newestPerPeriod(newestFirst, weekOf, policy.keepWeekly),
    ...newestPerPeriod(newestFirst, monthOf, policy.keepMonthly),
  ]);
  const newestVerified = newestFirst.find((backup) => backup.verified);
  if (newestVerified !== undefined) keep.add(newestVerified.id);
  return newestFirst
    .filter((backup) => !keep.has(backup.id))
    .reverse()
    .map((backup) => backup.id);
}

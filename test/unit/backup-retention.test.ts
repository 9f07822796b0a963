import { backupsToDelete } from "../../lib/backups/retention";
import type { RetainedBackup } from "../../lib/backups/retention";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const policy = { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 };

/** One backup a day at 02:00 UTC for `days` days up to 2026-12-04, newest last. */
function dailyBackups(days: number, verified: (index: number) => boolean = () => false): RetainedBackup[] {
  const last = Date.UTC(2026, 11, 4, 2);
  return Array.from({ length: days }, (_, index) => {
    const takenAt = last - (days - 1 - index) * DAY;
    return { id: new Date(takenAt).toISOString().slice(0, 10), takenAt, verified: verified(index) };
  });
}

const kept = (backups: readonly RetainedBackup[], deleted: readonly string[]): string[] =>
  backups.map((backup) => backup.id).filter((id) => !deleted.includes(id));

describe("grandfather-father-son retention", () => {
  it("keeps nothing extra while there are fewer backups than days to keep", () => {
    expect(backupsToDelete(dailyBackups(5), policy)).toEqual([]);
  });

  it("after a year of daily backups keeps 7 days, the newest of 4 weeks and of 12 months", () => {
    const backups = dailyBackups(400);
    const left = kept(backups, backupsToDelete(backups, policy));
    // The last 7 days; the Sundays ending the weeks before (11-29 is among the days); the ends of the months before.
    expect(left.slice(-7)).toEqual(["2026-11-28", "2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]);
    expect(left).toEqual(
      expect.arrayContaining(["2026-11-22", "2026-11-15", "2026-10-31", "2026-09-30", "2026-01-31"]),
    );
    expect(left).not.toContain("2025-12-31");
    expect(left).not.toContain("2026-11-21");
    expect(left).toHaveLength(7 + 2 + 10);
  });

  it("never deletes the newest backup a drill passed on, however old", () => {
    const backups = dailyBackups(400, (index) => index === 3);
    const deleted = backupsToDelete(backups, policy);
    expect(deleted).not.toContain(backups[3]?.id);
    // Without it, it would go.
    expect(backupsToDelete(dailyBackups(400), policy)).toContain(backups[3]?.id);
  });

  it("keeps only the newest of several backups taken the same day", () => {
    const base = Date.UTC(2026, 11, 4, 2);
    const backups = [0, 1, 2].map((hour) => ({ id: `b${hour}`, takenAt: base + hour * HOUR, verified: false }));
    expect(backupsToDelete(backups, { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 })).toEqual(["b0", "b1"]);
  });

  it("deletes oldest first", () => {
    const deleted = backupsToDelete(dailyBackups(60), { keepDaily: 2, keepWeekly: 0, keepMonthly: 0 });
    expect(deleted[0]).toBe("2026-10-06");
    expect(deleted).toHaveLength(58);
  });
});

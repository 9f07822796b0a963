import { Cron } from "croner";

/** When periodic work runs: on a cron expression (five fields, or six with seconds), or every so many milliseconds. */
export type Schedule = { readonly cron: string; readonly timezone?: string } | { readonly everyMs: number };

/** A cron expression checked at once, so that a bad setting fails at start with the reason, not at the first run. */
export function cronSchedule(expression: string, timezone?: string): Schedule {
  try {
    new Cron(expression, { paused: true, timezone });
  } catch (error) {
    throw new Error(`"${expression}" is not a cron schedule: ${(error as Error).message}`);
  }
  return timezone === undefined ? { cron: expression } : { cron: expression, timezone };
}

export function describeSchedule(schedule: Schedule): string {
  if ("everyMs" in schedule) return `every ${schedule.everyMs / 1000} s`;
  return schedule.timezone ? `cron ${schedule.cron} (${schedule.timezone})` : `cron ${schedule.cron}`;
}

/**
 * The moment after `after` at which the schedule next fires; for an interval, `after` is the previous
 * firing (or the start), so that runs stay on a fixed rate whatever each one takes.
 */
export function nextFiring(schedule: Schedule, after: number): number | undefined {
  if ("everyMs" in schedule) {
    if (!(schedule.everyMs > 0)) throw new Error(`an interval must be positive, not ${schedule.everyMs} ms`);
    return after + schedule.everyMs;
  }
  return new Cron(schedule.cron, { paused: true, timezone: schedule.timezone }).nextRun(new Date(after))?.getTime();
}

/**
 * How long one run may hold the lease by default: the interval, or the gap between a cron schedule's
 * next two firings; at least a minute.
 */
export function defaultLeaseMs(schedule: Schedule, now: number): number {
  const first = nextFiring(schedule, now);
  const second = first === undefined ? undefined : nextFiring(schedule, first);
  const gap = first !== undefined && second !== undefined ? second - first : 60_000;
  return Math.max(60_000, gap);
}

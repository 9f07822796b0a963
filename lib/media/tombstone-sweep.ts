import type { ScheduledTaskOptions } from "../scheduling/periodic-tasks";
import type { MediaRepository } from "./media-repository";

const DAY_MS = 24 * 3600 * 1000;
/** Rows removed per statement, so that a large backlog never holds one long transaction. */
const SWEEP_BATCH = 500;
/** How often the tombstone sweep runs (on one node per interval, under its lease). */
export const TOMBSTONE_SWEEP_INTERVAL_MS = 3600 * 1000;

export interface TombstoneSweepOptions {
  readonly repository: Pick<MediaRepository, "deleteReleasedTombstones">;
  readonly retentionDays: number;
  readonly now?: () => number;
}

/**
 * Tombstones let a repeated DELETE answer 204 and hold the quota still owed; once the bytes are
 * given back, one is kept for the retention period only. A sweep removes those deleted longer ago
 * than that; the ones whose bytes are still owed stay, whatever their age.
 */
export class TombstoneSweeper {
  private readonly now: () => number;

  constructor(private readonly options: TombstoneSweepOptions) {
    this.now = options.now ?? Date.now;
  }

  /** One sweep; how many tombstones went. */
  async sweep(): Promise<number> {
    const before = this.now() - this.options.retentionDays * DAY_MS;
    let removed = 0;
    for (;;) {
      const batch = await this.options.repository.deleteReleasedTombstones(before, SWEEP_BATCH);
      removed += batch;
      if (batch < SWEEP_BATCH) return removed;
    }
  }
}

/**
 * The sweep as periodic work: at start, then hourly. After a sweep the lease is kept until it runs out
 * rather than released, so that nodes whose timers fire at other moments do not sweep again within the hour.
 */
export function tombstoneSweepTask(
  sweeper: TombstoneSweeper,
  retentionDays: number,
  log: { info(message: string): void; warn(message: string): void },
): ScheduledTaskOptions<number> {
  return {
    name: "tombstone-sweep",
    schedule: { everyMs: TOMBSTONE_SWEEP_INTERVAL_MS },
    leaseMs: TOMBSTONE_SWEEP_INTERVAL_MS,
    keepLeaseAfterSuccess: true,
    runAtStart: true,
    async run() {
      const removed = await sweeper.sweep();
      if (removed > 0) log.info(`removed ${removed} tombstone(s) older than ${retentionDays} days`);
      return removed;
    },
    log,
  };
}

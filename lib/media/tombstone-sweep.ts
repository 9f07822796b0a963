import type { LeaseLock } from "../jobs/lease-lock";
import type { MediaRepository } from "./media-repository";

const DAY_MS = 24 * 3600 * 1000;
/** Rows removed per statement, so that a large backlog never holds one long transaction. */
const SWEEP_BATCH = 500;

export interface TombstoneSweepOptions {
  readonly repository: Pick<MediaRepository, "deleteReleasedTombstones">;
  /** Shared by every node that runs the media service (Redis in cluster mode). */
  readonly lock: LeaseLock;
  readonly retentionDays: number;
  /** How often a node tries; the lease is held this long, so one sweep per interval across the cluster. */
  readonly intervalMs: number;
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

  /**
   * One sweep; how many tombstones went, or undefined when a sweep ran within the interval (on
   * any node). After a sweep the lease is kept until it runs out rather than released, so that
   * nodes whose timers fire at other moments do not sweep again within the interval.
   */
  async sweep(): Promise<number | undefined> {
    const release = await this.options.lock.tryAcquire(this.options.intervalMs);
    if (!release) return undefined;
    try {
      const before = this.now() - this.options.retentionDays * DAY_MS;
      let removed = 0;
      for (;;) {
        const batch = await this.options.repository.deleteReleasedTombstones(before, SWEEP_BATCH);
        removed += batch;
        if (batch < SWEEP_BATCH) return removed;
      }
    } catch (error) {
      // Not swept: let any node try again at its next turn.
      await release().catch(() => undefined);
      throw error;
    }
  }
}

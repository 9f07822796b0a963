import type { RateLimiterAbstract, RateLimiterRes } from "rate-limiter-flexible";

export interface BatchedRateLimiterOptions {
  /** Requests allowed per key and window, cluster-wide. */
  readonly points: number;
  /**
   * At most this many of a key's requests are admitted on this node without the shared store having
   * confirmed them. The cluster-wide count may exceed `points` by at most nodes × syncBatch per window.
   */
  readonly syncBatch: number;
  /** A key's unsent count goes to the shared store at least this often, so other nodes learn of light traffic too. */
  readonly syncIntervalMs: number;
  /** Reads the clock; tests pass their own. */
  readonly now?: () => number;
}

/** What a refused request is told: how long until the key's window ends. */
export class RateLimitExceeded {
  constructor(readonly msBeforeNext: number) {}
}

interface KeyState {
  /** The shared count as the store last reported it (every node's synchronised requests in this window). */
  sharedConsumed: number;
  /** When the store's window for the key ends, as it last reported it. */
  windowEndsAt: number;
  /** Admitted here and not yet sent. */
  unsent: number;
  /** Sent and not yet confirmed. */
  sending: number;
  sync: Promise<void> | undefined;
}

/**
 * A first, in-memory stage in front of a shared limiter (RateLimiterRedis): each node counts a key's requests
 * locally and adds them to the shared count in batches (`penalty`), so most requests cost no round trip.
 * A node admits a request while the shared count it last saw plus what it has not yet had confirmed stays
 * under the limit; it sends its batch once half of `syncBatch` is waiting, and when a full `syncBatch` is
 * unconfirmed it waits for the store before deciding. Because every node's unconfirmed requests are bounded
 * by `syncBatch`, the requests admitted cluster-wide in a window stay within points + nodes × syncBatch.
 * When the store cannot be reached, the shared limiter's insurance (memory) answers, so each node keeps
 * limiting on its own.
 */
export class BatchedRateLimiter {
  private readonly keys = new Map<string, KeyState>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly sendAt: number;

  constructor(
    private readonly shared: RateLimiterAbstract,
    private readonly options: BatchedRateLimiterOptions,
  ) {
    if (!Number.isSafeInteger(options.syncBatch) || options.syncBatch < 1) throw new RangeError("syncBatch must be a positive integer");
    this.now = options.now ?? Date.now;
    this.sendAt = Math.max(1, Math.floor(options.syncBatch / 2));
    this.timer = setInterval(() => this.syncAll(), options.syncIntervalMs);
    this.timer.unref();
  }

  /** Admits one request for `key`, or throws RateLimitExceeded. Resolves without touching the store for most requests. */
  async consume(key: string): Promise<void> {
    for (;;) {
      const state = this.stateOf(key);
      if (state.sharedConsumed + state.unsent + state.sending >= this.options.points) {
        // Refused requests are not counted: like a refused consume, they must not lengthen the window.
        throw new RateLimitExceeded(state.windowEndsAt === 0 ? this.windowMs : Math.max(0, state.windowEndsAt - this.now()));
      }
      if (state.unsent + state.sending < this.options.syncBatch) {
        state.unsent += 1;
        if (state.unsent >= this.sendAt && state.sync === undefined) void this.sync(key, state);
        return;
      }
      await (state.sync ?? this.sync(key, state));
    }
  }

  /** Sends every key's unsent count now (also on a timer). */
  async syncAll(): Promise<void> {
    const now = this.now();
    const sends: Promise<void>[] = [];
    for (const [key, state] of this.keys) {
      if (state.unsent > 0 && state.sync === undefined) sends.push(this.sync(key, state));
      else if (state.unsent === 0 && state.sync === undefined && state.windowEndsAt <= now) this.keys.delete(key);
    }
    await Promise.all(sends);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private get windowMs(): number {
    return this.shared.duration * 1000;
  }

  private stateOf(key: string): KeyState {
    let state = this.keys.get(key);
    if (state === undefined) {
      state = { sharedConsumed: 0, windowEndsAt: 0, unsent: 0, sending: 0, sync: undefined };
      this.keys.set(key, state);
    } else if (state.windowEndsAt <= this.now() && state.windowEndsAt !== 0) {
      // The store's window has ended: its count starts again from what this node has not yet sent.
      state.sharedConsumed = 0;
      state.windowEndsAt = 0;
    }
    return state;
  }

  private sync(key: string, state: KeyState): Promise<void> {
    const points = state.unsent;
    state.unsent = 0;
    state.sending = points;
    const sync = this.shared
      .penalty(key, points)
      .then(
        (result: RateLimiterRes) => {
          state.sharedConsumed = result.consumedPoints;
          state.windowEndsAt = this.now() + result.msBeforeNext;
        },
        () => {
          // Neither the store nor its insurance answered: count the batch locally so this node still limits.
          state.sharedConsumed += points;
          if (state.windowEndsAt === 0) state.windowEndsAt = this.now() + this.windowMs;
        },
      )
      .finally(() => {
        state.sending = 0;
        state.sync = undefined;
      });
    state.sync = sync;
    return sync;
  }
}

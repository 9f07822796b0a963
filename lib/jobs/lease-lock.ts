import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";

/** A lock held for a lease: it frees itself if its holder dies, so a crashed node never blocks the others. */
export interface LeaseLock {
  /** The release function when acquired, undefined when someone else holds it. */
  tryAcquire(leaseMs: number): Promise<(() => Promise<void>) | undefined>;
}

/** A lease kept for as long as its holder renews it: for duties that run continuously on one node (the binlog archiver). */
export interface RenewableLease {
  /** Extends the lease to `leaseMs` from now; false when it had run out and someone else may hold it. */
  renew(leaseMs: number): Promise<boolean>;
  release(): Promise<void>;
}

export interface RenewableLeaseLock extends LeaseLock {
  /** The lease when acquired, undefined when someone else holds it. */
  tryHold(leaseMs: number): Promise<RenewableLease | undefined>;
}

/** One process: the embedded node (its only competitor is its own timer firing while a round still runs). */
export class MemoryLeaseLock implements RenewableLeaseLock {
  private heldUntil = 0;

  async tryAcquire(leaseMs: number): Promise<(() => Promise<void>) | undefined> {
    const now = Date.now();
    if (this.heldUntil > now) return undefined;
    const until = now + leaseMs;
    this.heldUntil = until;
    return async () => {
      if (this.heldUntil === until) this.heldUntil = 0;
    };
  }

  async tryHold(leaseMs: number): Promise<RenewableLease | undefined> {
    const now = Date.now();
    if (this.heldUntil > now) return undefined;
    let until = now + leaseMs;
    this.heldUntil = until;
    return {
      renew: async (nextMs) => {
        if (this.heldUntil !== until || until <= Date.now()) return false;
        until = Date.now() + nextMs;
        this.heldUntil = until;
        return true;
      },
      release: async () => {
        if (this.heldUntil === until) this.heldUntil = 0;
      },
    };
  }
}

/** Deletes the key only when it still holds our token: a lease that expired and was taken over is not ours to free. */
const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/** Extends the key's lease only when it still holds our token. */
const RENEW = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;

/** Across nodes: SET NX PX on the shared Redis (one instance; the lease bounds the damage of a lost lock). */
export class RedisLeaseLock implements RenewableLeaseLock {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
  ) {}

  async tryAcquire(leaseMs: number): Promise<(() => Promise<void>) | undefined> {
    const token = randomBytes(16).toString("hex");
    const answer = await this.redis.set(this.key, token, "PX", leaseMs, "NX");
    if (answer !== "OK") return undefined;
    return async () => {
      await this.redis.eval(RELEASE, 1, this.key, token);
    };
  }

  async tryHold(leaseMs: number): Promise<RenewableLease | undefined> {
    const token = randomBytes(16).toString("hex");
    const answer = await this.redis.set(this.key, token, "PX", leaseMs, "NX");
    if (answer !== "OK") return undefined;
    return {
      renew: async (nextMs) => (await this.redis.eval(RENEW, 1, this.key, token, String(nextMs))) === 1,
      release: async () => {
        await this.redis.eval(RELEASE, 1, this.key, token);
      },
    };
  }
}

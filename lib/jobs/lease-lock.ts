import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";

/** A lock held for a lease: it frees itself if its holder dies, so a crashed node never blocks the others. */
export interface LeaseLock {
  /** The release function when acquired, undefined when someone else holds it. */
  tryAcquire(leaseMs: number): Promise<(() => Promise<void>) | undefined>;
}

/** One process: the embedded node (its only competitor is its own timer firing while a round still runs). */
export class MemoryLeaseLock implements LeaseLock {
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
}

/** Deletes the key only when it still holds our token: a lease that expired and was taken over is not ours to free. */
const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/** Across nodes: SET NX PX on the shared Redis (one instance; the lease bounds the damage of a lost lock). */
export class RedisLeaseLock implements LeaseLock {
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
}

import type { Redis } from "ioredis";
import type { WriteMarkStore } from "./read-your-writes";

export class RedisWriteMarkStore implements WriteMarkStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = "shoal:write-mark:",
  ) {}

  async remember(key: string, position: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.prefix + key, position, "PX", Math.max(1, Math.round(ttlMs)));
  }

  async recall(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + key)) ?? undefined;
  }
}

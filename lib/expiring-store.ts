import type { Redis } from "ioredis";
import type { RedisCircuit } from "./cache/redis-circuit";

/** Short-lived string values by key: in memory on one node, in Redis when nodes must share them. */
export interface ExpiringStore {
  remember(key: string, value: string, ttlMs: number): Promise<void>;
  recall(key: string): Promise<string | undefined>;
}

const MAX_MEMORY_ENTRIES = 100_000;

export class MemoryExpiringStore implements ExpiringStore {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async remember(key: string, value: string, ttlMs: number): Promise<void> {
    // Re-inserting moves the key to the end, so the first key is always the least recently written.
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
    if (this.entries.size > MAX_MEMORY_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  async recall(key: string): Promise<string | undefined> {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }
}

/** With a circuit, fails at once (RedisUnavailableError) while Redis is known to be unreachable. */
export class RedisExpiringStore implements ExpiringStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly circuit?: RedisCircuit,
  ) {}

  async remember(key: string, value: string, ttlMs: number): Promise<void> {
    await this.run(() => this.redis.set(this.prefix + key, value, "PX", Math.max(1, Math.round(ttlMs))));
  }

  async recall(key: string): Promise<string | undefined> {
    return (await this.run(() => this.redis.get(this.prefix + key))) ?? undefined;
  }

  private run<T>(command: () => Promise<T>): Promise<T> {
    return this.circuit ? this.circuit.run(command) : command();
  }
}

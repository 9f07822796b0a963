import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { FailoverLedger } from "./promotion";
import type { StoredTopology, TopologyStore } from "./topology";

const TOPOLOGY_PREFIX = "shoal:db-topology:";
const BLOCK_PREFIX = "shoal:db-failover-block:";
const READY_WAIT_MS = 3000;

function isStoredTopology(value: unknown): value is StoredTopology {
  const candidate = value as Partial<StoredTopology> | null;
  return (
    typeof candidate?.primary === "string" &&
    Array.isArray(candidate.replicas) &&
    candidate.replicas.every((server) => typeof server === "string") &&
    typeof candidate.previousPrimary === "string" &&
    typeof candidate.promotedAt === "string"
  );
}

/** The promoted topology of each database, kept in the shared Redis without expiry (no credentials in it). */
export class RedisTopologyStore implements TopologyStore {
  constructor(private readonly redis: Redis) {}

  async load(database: string): Promise<StoredTopology | undefined> {
    await this.connected();
    const text = await this.redis.get(TOPOLOGY_PREFIX + database);
    if (text === null) return undefined;
    const value: unknown = JSON.parse(text);
    if (!isStoredTopology(value)) throw new Error(`the stored topology of ${database} is malformed`);
    return value;
  }

  async save(database: string, topology: StoredTopology): Promise<void> {
    await this.redis.set(TOPOLOGY_PREFIX + database, JSON.stringify(topology));
  }

  /** A node starting connects to its database as Redis is still connecting (commands fail at once without an offline queue). */
  private connected(): Promise<void> {
    if (this.redis.status === "ready") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.redis.off("ready", onReady);
        reject(new Error(`Redis is ${this.redis.status}`));
      }, READY_WAIT_MS);
      this.redis.once("ready", onReady);
    });
  }
}

/**
 * The block window of one group of servers, as a Redis key that expires: claiming it is atomic across
 * operators. The group is named by the primary its settings name, which does not change with promotions.
 */
export class RedisFailoverLedger implements FailoverLedger {
  private readonly key: string;
  private readonly token = randomUUID();

  constructor(
    private readonly redis: Redis,
    group: string,
  ) {
    this.key = BLOCK_PREFIX + group;
  }

  async claimWindow(seconds: number): Promise<boolean> {
    return (await this.redis.set(this.key, this.token, "EX", Math.max(1, Math.ceil(seconds)), "NX")) === "OK";
  }

  async releaseWindow(): Promise<void> {
    // Only our own claim: the window may have expired and been claimed by someone else meanwhile.
    await this.redis.eval(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`, 1, this.key, this.token);
  }
}

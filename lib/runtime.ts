import { Redis } from "ioredis";
import { RedisCircuit, redisClientOptions } from "./cache/redis-circuit";
import type { DatabaseName, Settings } from "../config/settings";
import type { Database, DatabaseLogger } from "./db/database";
import { createDatabase } from "./db/open-database";
import type { WriteMarkStore } from "./db/read-your-writes";
import { RedisTopologyStore } from "./db/redis-topology-store";
import { MemoryExpiringStore, RedisExpiringStore } from "./expiring-store";
import type { ExpiringStore } from "./expiring-store";
import { HealthRegistry } from "./health";
import { MemoryLeaseLock, RedisLeaseLock } from "./jobs/lease-lock";
import type { RenewableLeaseLock } from "./jobs/lease-lock";
import { ensurePrivateDirectory, formatMode } from "./private-files";
import { loadOrCreateSecret } from "./secret";
import { PeriodicTasks } from "./scheduling/periodic-tasks";
import { RateLimits } from "./security/rate-limits";
import { LocalStorage } from "./storage/local-storage";
import type { ObjectStorage } from "./storage/object-storage";
import { S3Storage } from "./storage/s3-storage";
import { UrlSigner } from "./storage/signed-url";

/**
 * The adapters one node shares between its services: chosen once from the settings,
 * so that services never branch on the mode themselves.
 */
export interface Runtime {
  readonly settings: Settings;
  readonly health: HealthRegistry;
  readonly storage: ObjectStorage;
  readonly writeMarks: WriteMarkStore;
  /** What each finished upload became, or why it was refused (GET /api/uploads/<id>/media). */
  readonly uploadOutcomes: ExpiringStore;
  /** The shared Redis in cluster mode; undefined when embedded. */
  readonly redis: Redis | undefined;
  readonly rateLimits: RateLimits;
  /** Signs CSRF tokens and URLs; the same on every node. */
  readonly secret: string;
  /** The lease that one node at a time holds for `name`: across the cluster in cluster mode, within this process when embedded. */
  leaseLock(name: string): RenewableLeaseLock;
  /** Periodic cluster-wide work on this node (each task under `leaseLock(task name)`), and its last runs. */
  readonly periodicTasks: PeriodicTasks;
  createDatabase<DB>(name: DatabaseName, logger: DatabaseLogger): Database<DB>;
  close(): Promise<void>;
}

export function createRedisClient(url: string): Redis {
  return new Redis(redisClientOptions(url));
}

export function createRuntime(settings: Settings): Runtime {
  // Cluster nodes use Redis for read-your-writes marks even when response caching is off.
  const redis = settings.cache.kind === "redis" ? createRedisClient(settings.cache.url) : undefined;
  // ioredis reconnects by itself; without a listener an outage would crash the process.
  redis?.on("error", () => undefined);
  const circuit = redis ? new RedisCircuit(redis, { recover: () => redis.ping() }) : undefined;
  const writeMarks = redis ? new RedisExpiringStore(redis, "shoal:write-mark:", circuit) : new MemoryExpiringStore();
  // The only record of a finished upload for a client that lost the last answer.
  const uploadOutcomes = redis ? new RedisExpiringStore(redis, "shoal:upload-outcome:", circuit) : new MemoryExpiringStore();
  if (settings.mode === "embedded") {
    const { tightenedFrom } = ensurePrivateDirectory(settings.dataDir);
    // Before the broker and its logger exist: Node's own warning channel (stderr).
    if (tightenedFrom !== undefined) {
      process.emitWarning(
        `SHOAL_DATA_DIR ${settings.dataDir} was open to other accounts (mode ${formatMode(tightenedFrom)}); it is now owner-only (0700)`,
        { code: "SHOAL_DATA_DIR_MODE" },
      );
    }
  }
  const secret = settings.secret ?? loadOrCreateSecret(settings.dataDir);
  const storage: ObjectStorage =
    settings.storage.kind === "s3" ? new S3Storage(settings.storage) : new LocalStorage(settings.storage.dir, new UrlSigner(secret));
  const health = new HealthRegistry();
  const memoryLocks = new Map<string, RenewableLeaseLock>();
  const leaseLock = (name: string): RenewableLeaseLock => {
    if (redis) return new RedisLeaseLock(redis, `shoal:lock:${name}`);
    let lock = memoryLocks.get(name);
    if (!lock) memoryLocks.set(name, (lock = new MemoryLeaseLock()));
    return lock;
  };
  const periodicTasks = new PeriodicTasks(leaseLock);

  if (!settings.cache.enabled) {
    health.register("cache", () => ({ status: "ok", kind: "none" }));
  } else if (redis && circuit) {
    // Without Redis the node still serves (from the database, with per-node limits): degraded, not down.
    health.register("cache", async () => {
      if (!circuit.available) return { status: "degraded", kind: "redis", error: `connection ${redis.status}, circuit open` };
      try {
        await circuit.run(() => redis.ping());
      } catch (error) {
        return { status: "degraded", kind: "redis", error: error instanceof Error ? error.message : String(error) };
      }
      return { status: "ok", kind: "redis" };
    });
  } else {
    health.register("cache", () => ({ status: "ok", kind: "memory" }));
  }

  const rateLimits = new RateLimits(settings.rateLimits, redis);

  return {
    settings,
    health,
    storage,
    writeMarks,
    uploadOutcomes,
    redis,
    rateLimits,
    secret,
    leaseLock,
    periodicTasks,
    createDatabase: (name, logger) =>
      createDatabase(name, settings.databases[name], settings.replication, writeMarks, logger, redis ? new RedisTopologyStore(redis) : undefined),
    async close() {
      await periodicTasks.stopAll();
      await storage.close();
      // Before Redis is closed: the last API request counts are sent there.
      await rateLimits.close();
      circuit?.stop();
      redis?.disconnect();
    },
  };
}

/**
 * Starts private backing services for integration tests and benchmarks, all on 127.0.0.1 and free ports.
 *
 *   const services = await startServices({ mariadb: { replicas: 2 }, redis: true, nats: true, s3: true });
 *   const env = envFor(services);   // SHOAL_MODE=cluster plus the URLs of what was started
 *   ...
 *   await services.stop();
 *
 * The MariaDB datadir template comes from $SHOAL_TEST_MARIADB_TEMPLATE (set by the jest global setup)
 * when set; otherwise one is made on first use.
 */
import { randomBytes } from "node:crypto";
import { startMariaDbReplicationSet } from "./mariadb";
import type { MariaDbReplicationSet } from "./mariadb";
import { startNats } from "./nats";
import type { NatsServer } from "./nats";
import { startRedis } from "./redis";
import type { RedisServer } from "./redis";
import { startS3 } from "./s3";
import { startS3InOwnProcess } from "./s3-process";
import type { S3Server } from "./s3";

export type { MariaDbReplicationSet, MariaDbServer } from "./mariadb";
export type { NatsServer } from "./nats";
export type { RedisServer } from "./redis";
export type { S3Server } from "./s3";
export { startMariaDbReplicationSet, prepareMariaDbTemplate } from "./mariadb";
export { startNats } from "./nats";
export { startRedis } from "./redis";
export { startS3 } from "./s3";
export { requireBinaries, ALL_BINARIES } from "./binaries";

export interface ServicesRequest {
  /** templateDir: a datadir from prepareMariaDbTemplate (see startMariaDbReplicationSet for the default). */
  readonly mariadb?: { readonly replicas: number; readonly templateDir?: string; readonly semiSync?: boolean };
  readonly redis?: boolean;
  readonly nats?: boolean;
  /** ownProcess: serve it from a child process (s3-process.ts) instead of this one. */
  readonly s3?: boolean | { readonly bucket?: string; readonly ownProcess?: boolean };
  /** Parent of the services' temporary directories (default os.tmpdir()). */
  readonly baseDir?: string;
}

export interface TestServices {
  readonly mariadb?: MariaDbReplicationSet;
  readonly redis?: RedisServer;
  readonly nats?: NatsServer;
  readonly s3?: S3Server;
  /** Stops everything that was started and deletes the temporary directories. */
  stop(): Promise<void>;
}

type Started = { mariadb: MariaDbReplicationSet } | { redis: RedisServer } | { nats: NatsServer } | { s3: S3Server };

function stopOne(started: Started): Promise<void> {
  if ("mariadb" in started) return started.mariadb.stop();
  if ("redis" in started) return started.redis.dispose();
  if ("nats" in started) return started.nats.dispose();
  return started.s3.stop();
}

/** Starts the requested services side by side; if any fails, stops the others and throws. */
export async function startServices(request: ServicesRequest): Promise<TestServices> {
  const { baseDir } = request;
  const starting: Array<Promise<Started>> = [];
  if (request.mariadb !== undefined) {
    const { replicas, templateDir, semiSync } = request.mariadb;
    starting.push(startMariaDbReplicationSet({ replicas, baseDir, templateDir, semiSync }).then((mariadb) => ({ mariadb })));
  }
  if (request.redis === true) starting.push(startRedis({ baseDir }).then((redis) => ({ redis })));
  if (request.nats === true) starting.push(startNats({ baseDir }).then((nats) => ({ nats })));
  if (request.s3 !== undefined && request.s3 !== false) {
    const { bucket, ownProcess = false } = request.s3 === true ? {} : request.s3;
    starting.push((ownProcess ? startS3InOwnProcess : startS3)({ bucket, baseDir }).then((s3) => ({ s3 })));
  }

  const outcomes = await Promise.allSettled(starting);
  const started = outcomes.flatMap((outcome) => (outcome.status === "fulfilled" ? [outcome.value] : []));
  const failures = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [outcome.reason as unknown] : []));
  const stopAll = async (): Promise<void> => {
    const stops = await Promise.allSettled(started.map(stopOne));
    const stopFailure = stops.find((outcome) => outcome.status === "rejected");
    if (stopFailure !== undefined) throw stopFailure.reason;
  };
  if (failures.length > 0) {
    await stopAll().catch(() => undefined);
    if (failures.length === 1) throw failures[0];
    throw new AggregateError(
      failures,
      failures.map((failure) => (failure instanceof Error ? failure.message : String(failure))).join("\n"),
    );
  }

  let stopping: Promise<void> | undefined;
  const services: TestServices = { stop: () => (stopping ??= stopAll()) };
  for (const service of started) Object.assign(services, service);
  return services;
}

/** One per process, so that every node started from envFor() signs alike. */
const SHARED_SECRET = randomBytes(32).toString("base64url");
/** Likewise, every node encrypts and reads backups alike. */
const SHARED_BACKUP_KEY = randomBytes(32).toString("base64");

/** The environment that points a Shoal node in cluster mode at these services. */
export function envFor(services: Omit<TestServices, "stop">): Record<string, string> {
  const env: Record<string, string> = { SHOAL_MODE: "cluster", SHOAL_SECRET: SHARED_SECRET, BACKUP_ENCRYPTION_KEY: SHARED_BACKUP_KEY };
  if (services.nats !== undefined) env.NATS_URL = services.nats.url;
  if (services.redis !== undefined) env.REDIS_URL = services.redis.url;
  if (services.mariadb !== undefined) {
    env.MYSQL_PRIMARY_URL = services.mariadb.primaryUrl;
    env.MYSQL_REPLICA_URLS = services.mariadb.replicaUrls.join(",");
  }
  if (services.s3 !== undefined) {
    env.S3_ENDPOINT = services.s3.endpoint;
    env.S3_REGION = services.s3.region;
    env.S3_BUCKET = services.s3.bucket;
    env.S3_ACCESS_KEY_ID = services.s3.accessKeyId;
    env.S3_SECRET_ACCESS_KEY = services.s3.secretAccessKey;
    env.S3_FORCE_PATH_STYLE = String(services.s3.forcePathStyle);
  }
  return env;
}

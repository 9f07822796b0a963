import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { deadlineOutlivesHeartbeats, heartbeatIntervalMs } from "../lib/jobs/job-state";
import { cronSchedule } from "../lib/scheduling/schedule";
import { DATABASE_NAMES, LOG_LEVELS, SERVICE_NAMES } from "./settings-types";
import type { DatabaseName, DatabaseSettings, ServiceName, Settings } from "./settings-types";

export * from "./settings-types";

/** A setting is missing or malformed; the message is one line naming the variable. */
export class SettingsError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = "SettingsError";
  }
}

const MiB = 1024 * 1024;

export type Env = Readonly<Record<string, string | undefined>>;

/** Shows a value in an error message without its credentials: everything before the last "@" but the scheme is masked. */
function quoted(value: string): string {
  const at = value.lastIndexOf("@");
  if (at === -1) return JSON.stringify(value);
  const schemeEnd = value.indexOf("//");
  const scheme = schemeEnd !== -1 && schemeEnd < at ? value.slice(0, schemeEnd + 2) : "";
  return JSON.stringify(`${scheme}***${value.slice(at)}`);
}

function urlSchema(protocols: readonly string[], label: string) {
  return z.string().superRefine((value, ctx) => {
    let ok = false;
    try {
      const url = new URL(value);
      ok = protocols.includes(url.protocol) && url.hostname !== "";
    } catch {
      ok = false;
    }
    if (!ok) ctx.addIssue({ code: "custom", message: `${quoted(value)} is not a ${label} URL` });
  });
}

const mysqlUrl = urlSchema(["mysql:"], "mysql://");
const schemas = {
  mode: z.enum(["embedded", "cluster"]),
  port: z.coerce.number().int().min(0).max(65535),
  positiveInt: z.coerce.number().int().positive(),
  positiveNumber: z.coerce.number().positive(),
  nonNegativeNumber: z.coerce.number().min(0).max(300),
  ffmpegThreads: z.coerce.number().int().min(1).max(16),
  processes: z.union([z.literal("auto").transform(() => os.availableParallelism()), z.coerce.number().int().min(1).max(64)]),
  logLevel: z.enum(LOG_LEVELS),
  bool: z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) => ["true", "1", "yes"].includes(v)),
  nats: urlSchema(["nats:", "tls:"], "nats://"),
  redis: urlSchema(["redis:", "rediss:"], "redis://"),
  http: urlSchema(["http:", "https:"], "http(s)://"),
  nonEmpty: z.string().min(1),
  mediaKind: z.enum(["image", "video", "audio"]),
  secret: z.string().min(32, "must be at least 32 characters"),
  metricsToken: z.string().min(16, "must be at least 16 characters"),
  host: z.string().regex(/^(?:[A-Za-z0-9.-]+|[0-9a-fA-F:]+)$/, "is not a host name or IP address"),
  proxy: z.string().regex(/^(loopback|linklocal|uniquelocal|[0-9a-fA-F.:]+(\/\d{1,3})?)$/, "is not an IP address, CIDR range or loopback/linklocal/uniquelocal"),
  origin: urlSchema(["http:", "https:"], "http(s)://").transform((value) => new URL(value).origin),
  backupKey: z.string().refine((value) => Buffer.from(value, "base64").length === 32, "must be 32 bytes in base64 (openssl rand -base64 32)"),
  cron: z.string().superRefine((value, ctx) => {
    try {
      cronSchedule(value);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: error instanceof Error ? error.message : String(error) });
    }
  }),
  nonNegativeInt: z.coerce.number().int().min(0),
  identifier: z.string().regex(/^[A-Za-z0-9_]*$/, "may contain only letters, digits and _"),
};

class EnvReader {
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  }

  optional<T>(name: string, schema: z.ZodType<T>): T | undefined {
    const value = this.raw(name);
    return value === undefined ? undefined : this.parse(name, schema, value);
  }

  withDefault<T>(name: string, schema: z.ZodType<T>, fallback: T): T {
    return this.optional(name, schema) ?? fallback;
  }

  required<T>(name: string, schema: z.ZodType<T>, why: string): T {
    const value = this.raw(name);
    if (value === undefined) throw new SettingsError(name, `required ${why}`);
    return this.parse(name, schema, value);
  }

  list<T>(name: string, schema: z.ZodType<T>): T[] | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    return value
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "")
      .map((item) => this.parse(name, schema, item));
  }

  private parse<T>(name: string, schema: z.ZodType<T>, value: string): T {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    const message = issue?.code === "custom" ? issue.message : `${quoted(value)}: ${issue?.message ?? "invalid"}`;
    throw new SettingsError(name, message);
  }
}

function parseServices(reader: EnvReader): ServiceName[] {
  const names = reader.list("SERVICES", schemas.nonEmpty);
  if (names === undefined || names.length === 0) return [...SERVICE_NAMES];
  for (const name of names) {
    if (!(SERVICE_NAMES as readonly string[]).includes(name)) {
      throw new SettingsError("SERVICES", `unknown service ${quoted(name)} (known: ${SERVICE_NAMES.join(", ")})`);
    }
  }
  return [...new Set(names)] as ServiceName[];
}

function parseMysqlDatabases(reader: EnvReader): Record<DatabaseName, DatabaseSettings> {
  const prefix = reader.withDefault("MYSQL_DATABASE_PREFIX", schemas.identifier, "shoal_");
  const poolSize = reader.withDefault("MYSQL_POOL_SIZE", schemas.positiveInt, 10);
  const sharedPrimary = reader.optional("MYSQL_PRIMARY_URL", mysqlUrl);
  const sharedReplicas = reader.list("MYSQL_REPLICA_URLS", mysqlUrl) ?? [];
  const entries = DATABASE_NAMES.map((name): [DatabaseName, DatabaseSettings] => {
    const upper = name.toUpperCase();
    const ownPrimary = reader.optional(`MYSQL_${upper}_PRIMARY_URL`, mysqlUrl);
    const primaryUrl = ownPrimary ?? sharedPrimary;
    if (primaryUrl === undefined) {
      throw new SettingsError("MYSQL_PRIMARY_URL", `required when SHOAL_MODE=cluster (or set MYSQL_${upper}_PRIMARY_URL)`);
    }
    const replicaUrls = reader.list(`MYSQL_${upper}_REPLICA_URLS`, mysqlUrl) ?? (ownPrimary ? [] : sharedReplicas);
    const database = reader.withDefault(`MYSQL_${upper}_DATABASE`, schemas.identifier, `${prefix}${name}`);
    return [name, { kind: "mysql", database, primaryUrl, replicaUrls, poolSize }];
  });
  return Object.fromEntries(entries) as Record<DatabaseName, DatabaseSettings>;
}

/** Embedded mode keeps its data in one process (SQLite files, in-process channels): it runs as one. */
function parseProcesses(reader: EnvReader, cluster: boolean): number {
  const processes = reader.withDefault("NODE_PROCESSES", schemas.processes, 1);
  if (processes > 1 && !cluster) throw new SettingsError("NODE_PROCESSES", "more than 1 needs SHOAL_MODE=cluster (an embedded node keeps its data in one process)");
  return processes;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Parses and validates the environment once; throws SettingsError on the first problem. */
export function parseSettings(env: Env, cwd = process.cwd()): Settings {
  const reader = new EnvReader(env);
  const mode = reader.withDefault("SHOAL_MODE", schemas.mode, "embedded");
  const cluster = mode === "cluster";
  const whyCluster = "when SHOAL_MODE=cluster";
  const dataDir = path.resolve(cwd, reader.withDefault("SHOAL_DATA_DIR", schemas.nonEmpty, "./data"));
  const ttlSeconds = reader.withDefault("CACHE_TTL_SECONDS", schemas.positiveInt, 60);
  const cacheEnabled = reader.withDefault("CACHE_ENABLED", schemas.bool, true);
  const maxLagSeconds = reader.withDefault("DB_MAX_REPLICA_LAG_SECONDS", schemas.positiveNumber, 5);
  const s3Endpoint = cluster ? reader.optional("S3_ENDPOINT", schemas.http) : undefined;

  const port = reader.withDefault("PORT", schemas.port, 3000);
  const settings: Settings = {
    mode,
    nodeId: reader.optional("NODE_ID", schemas.nonEmpty),
    port,
    logLevel: reader.withDefault("LOG_LEVEL", schemas.logLevel, "info"),
    services: parseServices(reader),
    dataDir,
    databases: cluster
      ? parseMysqlDatabases(reader)
      : {
          membership: { kind: "sqlite", file: path.join(dataDir, "membership.sqlite") },
          media: { kind: "sqlite", file: path.join(dataDir, "media.sqlite") },
          site: { kind: "sqlite", file: path.join(dataDir, "site.sqlite") },
        },
    replication: {
      maxLagSeconds,
      rejoinLagSeconds: maxLagSeconds / 2,
      probeIntervalMs: reader.withDefault("DB_PROBE_INTERVAL_MS", schemas.positiveInt, 1000),
      readYourWritesWaitMs: reader.withDefault("DB_READ_YOUR_WRITES_WAIT_MS", schemas.positiveInt, 250),
      readYourWritesWindowMs: reader.withDefault("DB_READ_YOUR_WRITES_WINDOW_MS", schemas.positiveInt, 30_000),
    },
    failover: {
      blockSeconds: reader.withDefault("DB_FAILOVER_BLOCK_SECONDS", schemas.positiveInt, 3600),
      semiSync: reader.withDefault("DB_SEMI_SYNC", schemas.bool, false),
      adminUser: reader.optional("MYSQL_ADMIN_USER", schemas.nonEmpty),
      adminPassword: reader.optional("MYSQL_ADMIN_PASSWORD", schemas.nonEmpty),
    },
    transporter: cluster ? { kind: "nats", url: reader.required("NATS_URL", schemas.nats, whyCluster) } : { kind: "none" },
    cache: cluster
      ? { kind: "redis", enabled: cacheEnabled, url: reader.required("REDIS_URL", schemas.redis, whyCluster), ttlSeconds }
      : { kind: "memory", enabled: cacheEnabled, ttlSeconds },
    storage: cluster
      ? {
          kind: "s3",
          endpoint: s3Endpoint,
          region: reader.withDefault("S3_REGION", schemas.nonEmpty, "us-east-1"),
          bucket: reader.required("S3_BUCKET", schemas.nonEmpty, whyCluster),
          accessKeyId: reader.optional("S3_ACCESS_KEY_ID", schemas.nonEmpty),
          secretAccessKey: reader.optional("S3_SECRET_ACCESS_KEY", schemas.nonEmpty),
          forcePathStyle: reader.withDefault("S3_FORCE_PATH_STYLE", schemas.bool, false),
          // Over TLS the payload hash adds nothing the connection does not give; over http only a trusted network may skip it.
          unsignedPayload: reader.withDefault("S3_UNSIGNED_PAYLOAD", schemas.bool, !s3Endpoint?.startsWith("http:")),
        }
      : { kind: "local", dir: path.join(dataDir, "objects") },
    userQuotaBytes: reader.withDefault("USER_QUOTA_BYTES", schemas.positiveInt, 5 * 1024 ** 3),
    mediaTombstoneRetentionDays: reader.withDefault("MEDIA_TOMBSTONE_RETENTION_DAYS", schemas.positiveInt, 30),
    webSourceMaps: reader.withDefault("WEB_SOURCE_MAPS", schemas.bool, false),
    publicUrl: reader.withDefault("SHOAL_PUBLIC_URL", schemas.http, `http://localhost:${port}`).replace(/\/+$/, ""),
    secret: cluster ? reader.required("SHOAL_SECRET", schemas.secret, whyCluster) : reader.optional("SHOAL_SECRET", schemas.secret),
    sessions: {
      idleTimeoutSeconds: reader.withDefault("SESSION_IDLE_TIMEOUT_SECONDS", schemas.positiveInt, 12 * 3600),
      lifetimeSeconds: reader.withDefault("SESSION_LIFETIME_SECONDS", schemas.positiveInt, 7 * 24 * 3600),
    },
    shutdownTimeoutSeconds: reader.withDefault("SHUTDOWN_TIMEOUT_SECONDS", schemas.positiveInt, 30),
    shutdownDelaySeconds: reader.withDefault("SHUTDOWN_DELAY_SECONDS", schemas.nonNegativeNumber, 0),
    processes: parseProcesses(reader, cluster),
    backups: {
      encryptionKey: reader.optional("BACKUP_ENCRYPTION_KEY", schemas.backupKey),
      schedule: reader.withDefault("BACKUP_SCHEDULE", schemas.cron, "0 2 * * *"),
      drillSchedule: reader.optional("BACKUP_DRILL_SCHEDULE", schemas.cron),
      s3Bucket: cluster ? reader.optional("BACKUP_S3_BUCKET", schemas.nonEmpty) : undefined,
      dir: path.resolve(cwd, reader.withDefault("BACKUP_DIR", schemas.nonEmpty, path.join(dataDir, "backups"))),
      drillMysqlUrl: reader.optional("BACKUP_DRILL_MYSQL_URL", mysqlUrl),
      maxUnverifiedHours: reader.withDefault("BACKUP_MAX_UNVERIFIED_HOURS", schemas.positiveInt, 48),
      binlogFlushSeconds: reader.withDefault("BACKUP_BINLOG_FLUSH_SECONDS", schemas.positiveInt, 30),
      keepDaily: reader.withDefault("BACKUP_KEEP_DAILY", schemas.nonNegativeInt, 7),
      keepWeekly: reader.withDefault("BACKUP_KEEP_WEEKLY", schemas.nonNegativeInt, 4),
      keepMonthly: reader.withDefault("BACKUP_KEEP_MONTHLY", schemas.nonNegativeInt, 12),
    },
    metrics: {
      port: reader.optional("METRICS_PORT", schemas.port),
      host: reader.withDefault("METRICS_HOST", schemas.host, "127.0.0.1"),
      token: reader.optional("METRICS_TOKEN", schemas.metricsToken),
    },
    trustedProxies: reader.list("TRUSTED_PROXIES", schemas.proxy) ?? [],
    corsOrigins: reader.list("CORS_ORIGINS", schemas.origin) ?? [],
    uploads: {
      maxBytes: {
        image: reader.withDefault("UPLOAD_MAX_IMAGE_BYTES", schemas.positiveInt, 50 * MiB),
        audio: reader.withDefault("UPLOAD_MAX_AUDIO_BYTES", schemas.positiveInt, 200 * MiB),
        video: reader.withDefault("UPLOAD_MAX_VIDEO_BYTES", schemas.positiveInt, 2 * 1024 * MiB),
      },
      maxImagePixels: reader.withDefault("IMAGE_MAX_PIXELS", schemas.positiveInt, 100_000_000),
      expirySeconds: reader.withDefault("UPLOAD_EXPIRY_SECONDS", schemas.positiveInt, 24 * 3600),
      dir: path.join(dataDir, "uploads"),
    },
    delivery: {
      signedUrlTtlSeconds: reader.withDefault("SIGNED_URL_TTL_SECONDS", schemas.positiveInt, 900),
      publicBaseUrl: reader.optional("MEDIA_PUBLIC_BASE_URL", schemas.http)?.replace(/\/+$/, ""),
    },
    jobs: {
      concurrency: reader.withDefault("WORKER_CONCURRENCY", schemas.positiveInt, os.availableParallelism()),
      maxInFlight: reader.withDefault("JOB_MAX_IN_FLIGHT", schemas.positiveInt, 64),
      maxAttempts: reader.withDefault("JOB_MAX_ATTEMPTS", schemas.positiveInt, 5),
      retryBaseDelayMs: reader.withDefault("JOB_RETRY_BASE_DELAY_MS", schemas.positiveInt, 2000),
      // Below JetStream's 30 s ack wait: a retry waits while holding its message (see lib/jobs/job-runner.ts).
      retryMaxDelayMs: reader.withDefault("JOB_RETRY_MAX_DELAY_MS", schemas.positiveInt, 20_000),
      deadlineSeconds: reader.withDefault("JOB_DEADLINE_SECONDS", schemas.positiveInt, 600),
      reconcileIntervalSeconds: reader.withDefault("JOB_RECONCILE_INTERVAL_SECONDS", schemas.positiveInt, 60),
      kinds: reader.list("PROCESSING_KINDS", schemas.mediaKind) ?? ["image", "video", "audio"],
      ffmpegThreads: reader.withDefault("FFMPEG_THREADS", schemas.ffmpegThreads, 2),
    },
    stats: {
      viewFlushSeconds: reader.withDefault("STATS_VIEW_FLUSH_SECONDS", schemas.positiveInt, 20),
      snapshots: reader.withDefault("STATS_SNAPSHOTS", schemas.bool, true),
      snapshotMinute: reader.withDefault("STATS_SNAPSHOT_MINUTE", z.coerce.number().int().min(0).max(59), 5),
      hourlyRetentionDays: reader.withDefault("STATS_HOURLY_RETENTION_DAYS", schemas.positiveInt, 90),
      dailyRetentionDays: reader.withDefault("STATS_DAILY_RETENTION_DAYS", z.coerce.number().int().min(0), 0),
    },
    rateLimits: {
      loginFailuresPerAccountPerHour: reader.withDefault("RATE_LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR", schemas.positiveInt, 10),
      loginFailuresPerIpPerHour: reader.withDefault("RATE_LOGIN_FAILURES_PER_IP_PER_HOUR", schemas.positiveInt, 100),
      registrationsPerIpPerHour: reader.withDefault("RATE_REGISTRATIONS_PER_IP_PER_HOUR", schemas.positiveInt, 10),
      apiRequestsPerIpPerMinute: reader.withDefault("RATE_API_REQUESTS_PER_IP_PER_MINUTE", schemas.positiveInt, 1200),
      apiRequestsSyncBatch: reader.withDefault("RATE_API_SYNC_BATCH", schemas.positiveInt, 20),
      uploadsPerUserPerHour: reader.withDefault("RATE_UPLOADS_PER_USER_PER_HOUR", schemas.positiveInt, 200),
    },
  };
  if (settings.storage.kind === "s3" && (settings.storage.accessKeyId === undefined) !== (settings.storage.secretAccessKey === undefined)) {
    const missing = settings.storage.accessKeyId === undefined ? "S3_ACCESS_KEY_ID" : "S3_SECRET_ACCESS_KEY";
    throw new SettingsError(missing, "required when the other S3 key is set (S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together)");
  }
  if (!deadlineOutlivesHeartbeats(settings.jobs.deadlineSeconds)) {
    const heartbeatSeconds = heartbeatIntervalMs(settings.jobs.deadlineSeconds) / 1000;
    throw new SettingsError(
      "JOB_DEADLINE_SECONDS",
      `${settings.jobs.deadlineSeconds} is too short: running jobs show a sign of life every ${heartbeatSeconds} s, and a job silent for the deadline is taken for a dead worker's (re-enqueued, and taken over by a second worker while the first still runs it); it must be at least twice that (2 or more)`,
    );
  }
  return deepFreeze(settings);
}

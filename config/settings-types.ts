// What a node is configured with; config/settings.ts reads it from the environment.

export const SERVICE_NAMES = ["api", "users", "media", "site", "processing", "backup"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export const DATABASE_NAMES = ["membership", "media", "site"] as const;
export type DatabaseName = (typeof DATABASE_NAMES)[number];

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type Mode = "embedded" | "cluster";

export type DatabaseSettings =
  | { readonly kind: "sqlite"; readonly file: string }
  | {
      readonly kind: "mysql";
      readonly database: string;
      readonly primaryUrl: string;
      readonly replicaUrls: readonly string[];
      readonly poolSize: number;
    };

export interface ReplicationSettings {
  /** A replica lagging more than this leaves the read rotation. */
  readonly maxLagSeconds: number;
  /** ...and rejoins once it is back within this. */
  readonly rejoinLagSeconds: number;
  readonly probeIntervalMs: number;
  /** How long a read waits on a replica for the reader's own last write before using the primary. */
  readonly readYourWritesWaitMs: number;
  /** How long after a write the writer's reads are held to that write. */
  readonly readYourWritesWindowMs: number;
}

/** What `npm run db:promote` (and the REPL's `promote`) use. */
export interface FailoverSettings {
  /** A second promotion of the same servers within this many seconds is refused. */
  readonly blockSeconds: number;
  /** The promoted primary waits for a replica's acknowledgement of every commit; the replicas give it. */
  readonly semiSync: boolean;
  /** An account with SUPER (or READ_ONLY ADMIN and REPLICATION SLAVE ADMIN) on every server; default: the primary URL's. */
  readonly adminUser: string | undefined;
  readonly adminPassword: string | undefined;
}

export type StorageSettings =
  | { readonly kind: "local"; readonly dir: string }
  | {
      readonly kind: "s3";
      readonly endpoint: string | undefined;
      readonly region: string;
      readonly bucket: string;
      readonly accessKeyId: string | undefined;
      readonly secretAccessKey: string | undefined;
      readonly forcePathStyle: boolean;
      /** Uploads signed with UNSIGNED-PAYLOAD instead of a SHA-256 of their bytes (lib/storage/s3-client.ts). */
      readonly unsignedPayload: boolean;
    };

export interface SessionSettings {
  /** A session unused for this long ends. */
  readonly idleTimeoutSeconds: number;
  /** A session ends this long after sign-in, however much it is used. */
  readonly lifetimeSeconds: number;
}

export interface RateLimitSettings {
  readonly loginFailuresPerAccountPerHour: number;
  readonly loginFailuresPerIpPerHour: number;
  readonly registrationsPerIpPerHour: number;
  readonly apiRequestsPerIpPerMinute: number;
  /**
   * Cluster mode: a node admits up to this many of an address's API requests before Redis has counted them,
   * so the shared limit may be exceeded by at most nodes × this per minute.
   */
  readonly apiRequestsSyncBatch: number;
  readonly uploadsPerUserPerHour: number;
}

export type MediaKind = "image" | "video" | "audio";

export interface UploadSettings {
  /** Largest accepted upload per kind, in bytes. */
  readonly maxBytes: Readonly<Record<MediaKind, number>>;
  /** Images whose header declares more pixels than this are refused before decoding (pixel bombs). */
  readonly maxImagePixels: number;
  /** An unfinished upload is dropped (and its quota released) this long after its last byte. */
  readonly expirySeconds: number;
  /** Where the embedded node keeps unfinished uploads. */
  readonly dir: string;
}

export interface DeliverySettings {
  /** Lifetime of the signed URLs handed to browsers. */
  readonly signedUrlTtlSeconds: number;
  /** A CDN or bucket URL in front of public items' objects; signed URLs are used when unset. */
  readonly publicBaseUrl: string | undefined;
}

export interface JobSettings {
  /** Jobs one worker node runs at once (default: one per core). */
  readonly concurrency: number;
  /** Jobs handed out but not yet finished, across all worker nodes (JetStream's max_ack_pending). */
  readonly maxInFlight: number;
  /** Attempts per item before it is failed and dead-lettered. */
  readonly maxAttempts: number;
  /** First retry delay; it doubles per attempt (with jitter), up to retryMaxDelayMs. */
  readonly retryBaseDelayMs: number;
  readonly retryMaxDelayMs: number;
  /** An item left in `uploaded` or `processing` this long without a sign of life is re-enqueued. */
  readonly deadlineSeconds: number;
  /** How often the reconciler looks for such items (and once at start). */
  readonly reconcileIntervalSeconds: number;
  /** The kinds this node's workers process: a node can be an image worker, a transcoder, or both. */
  readonly kinds: readonly MediaKind[];
  /** Threads of each ffmpeg run (decoders, filters, encoders); a job runs one ffmpeg at a time. */
  readonly ffmpegThreads: number;
}

/** View counting and the site's snapshots. */
export interface StatsSettings {
  /** How often a media node moves counted views into the media database. */
  readonly viewFlushSeconds: number;
  /** Whether this node's site service takes the hourly and daily snapshots (one node at a time, under a lease). */
  readonly snapshots: boolean;
  /** Minute past each hour (UTC) at which the hour just ended, and after midnight the day just ended, are taken. */
  readonly snapshotMinute: number;
  /** Hourly snapshots older than this many days are dropped. */
  readonly hourlyRetentionDays: number;
  /** Daily snapshots older than this many days are dropped; 0 keeps them for ever. */
  readonly dailyRetentionDays: number;
}

export interface BackupSettings {
  /** BACKUP_ENCRYPTION_KEY (32 bytes, base64); embedded mode makes one in the data directory when unset, cluster mode refuses to back up. */
  readonly encryptionKey: string | undefined;
  /** Cron expression of the full backups. */
  readonly schedule: string;
  /** Cron expression of the restore drills; undefined: a drill after each backup. */
  readonly drillSchedule: string | undefined;
  /** Cluster mode: the bucket backups go to (default: the media bucket, under backups/). */
  readonly s3Bucket: string | undefined;
  /** Embedded mode: the directory backups and object copies go to (default: <data dir>/backups; better on another disk). */
  readonly dir: string;
  /** Where drills restore into a scratch database (default: each database's primary). */
  readonly drillMysqlUrl: string | undefined;
  /** Without a passed drill for this long, health says degraded. */
  readonly maxUnverifiedHours: number;
  /** Cluster mode: how often the binlog archiver uploads what it has received (closed binary logs and the growing one). */
  readonly binlogFlushSeconds: number;
  readonly keepDaily: number;
  readonly keepWeekly: number;
  readonly keepMonthly: number;
}

export interface MetricsSettings {
  /** A listener of its own for /metrics and detailed health, bound to `host`; none when undefined. */
  readonly port: number | undefined;
  readonly host: string;
  /** With a token, /metrics is also served on the public port to `Authorization: Bearer <token>`. */
  readonly token: string | undefined;
}

export interface Settings {
  readonly mode: Mode;
  readonly nodeId: string | undefined;
  readonly port: number;
  readonly logLevel: LogLevel;
  readonly services: readonly ServiceName[];
  readonly dataDir: string;
  readonly databases: Readonly<Record<DatabaseName, DatabaseSettings>>;
  readonly replication: ReplicationSettings;
  readonly stats: StatsSettings;
  readonly failover: FailoverSettings;
  readonly transporter: { readonly kind: "none" } | { readonly kind: "nats"; readonly url: string };
  readonly cache:
    | { readonly kind: "memory"; readonly enabled: boolean; readonly ttlSeconds: number }
    | { readonly kind: "redis"; readonly enabled: boolean; readonly url: string; readonly ttlSeconds: number };
  readonly storage: StorageSettings;
  /** Storage quota of a new account, in bytes. */
  readonly userQuotaBytes: number;
  /** Days a deleted item's tombstone is kept once its bytes are given back (a repeated DELETE answers 204 meanwhile). */
  readonly mediaTombstoneRetentionDays: number;
  /** Whether the gateway serves the web page's source maps (`*.map`); off in production unless asked for. */
  readonly webSourceMaps: boolean;
  /** Where browsers reach Shoal; origin checks and cookie security follow from it. */
  readonly publicUrl: string;
  /** Signs CSRF tokens and URLs; embedded mode makes one in the data directory when unset. */
  readonly secret: string | undefined;
  readonly sessions: SessionSettings;
  /** Proxy addresses (IPs, CIDRs, or loopback/linklocal/uniquelocal) whose X-Forwarded-For is believed. */
  readonly trustedProxies: readonly string[];
  /** Origins allowed to call the API from a browser (CORS); none by default. */
  readonly corsOrigins: readonly string[];
  readonly rateLimits: RateLimitSettings;
  readonly uploads: UploadSettings;
  readonly delivery: DeliverySettings;
  readonly jobs: JobSettings;
  readonly metrics: MetricsSettings;
  readonly backups: BackupSettings;
  /** How long a stopping node lets requests, tus PATCHes and jobs in flight finish before it exits anyway. */
  readonly shutdownTimeoutSeconds: number;
  /** How long a stopping node still serves new requests while readiness says 503, so the load balancer can notice first. */
  readonly shutdownDelaySeconds: number;
  /** Copies of this node run as one group sharing PORT (Node's cluster module), so that one node uses every core. */
  readonly processes: number;
}

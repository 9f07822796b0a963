import os from "node:os";
import path from "node:path";
import { parseSettings } from "../../config/settings";
import { CLUSTER, CWD, expectOneLineNaming, settingsError } from "../support/settings-env";

const DATA = path.join(CWD, "data");

describe("parseSettings: embedded mode (no environment)", () => {
  it("runs everything in one process with local files under ./data", () => {
    expect(parseSettings({}, CWD)).toEqual({
      mode: "embedded",
      nodeId: undefined,
      port: 3000,
      logLevel: "info",
      services: ["api", "users", "media", "site", "processing", "backup"],
      dataDir: DATA,
      databases: {
        membership: { kind: "sqlite", file: path.join(DATA, "membership.sqlite") },
        media: { kind: "sqlite", file: path.join(DATA, "media.sqlite") },
        site: { kind: "sqlite", file: path.join(DATA, "site.sqlite") },
      },
      replication: {
        maxLagSeconds: 5,
        rejoinLagSeconds: 2.5,
        probeIntervalMs: 1000,
        readYourWritesWaitMs: 250,
        readYourWritesWindowMs: 30_000,
      },
      transporter: { kind: "none" },
      cache: { kind: "memory", enabled: true, ttlSeconds: 60 },
      storage: { kind: "local", dir: path.join(DATA, "objects") },
      userQuotaBytes: 5 * 1024 ** 3,
      mediaTombstoneRetentionDays: 30,
      webSourceMaps: false,
      publicUrl: "http://localhost:3000",
      secret: undefined,
      sessions: { idleTimeoutSeconds: 12 * 3600, lifetimeSeconds: 7 * 24 * 3600 },
      trustedProxies: [],
      corsOrigins: [],
      uploads: {
        maxBytes: { image: 50 * 1024 ** 2, audio: 200 * 1024 ** 2, video: 2 * 1024 ** 3 },
        maxImagePixels: 100_000_000,
        expirySeconds: 24 * 3600,
        dir: path.join(DATA, "uploads"),
      },
      delivery: { signedUrlTtlSeconds: 900, publicBaseUrl: undefined },
      failover: { blockSeconds: 3600, semiSync: false, adminUser: undefined, adminPassword: undefined },
      jobs: {
        concurrency: os.availableParallelism(),
        maxInFlight: 64,
        maxAttempts: 5,
        retryBaseDelayMs: 2000,
        retryMaxDelayMs: 20_000,
        deadlineSeconds: 600,
        reconcileIntervalSeconds: 60,
        kinds: ["image", "video", "audio"],
        ffmpegThreads: 2,
      },
      rateLimits: {
        loginFailuresPerAccountPerHour: 10,
        loginFailuresPerIpPerHour: 100,
        registrationsPerIpPerHour: 10,
        apiRequestsPerIpPerMinute: 1200,
        apiRequestsSyncBatch: 20,
        uploadsPerUserPerHour: 200,
      },
      metrics: { port: undefined, host: "127.0.0.1", token: undefined },
      backups: {
        encryptionKey: undefined,
        schedule: "0 2 * * *",
        drillSchedule: undefined,
        s3Bucket: undefined,
        dir: "/srv/shoal/data/backups",
        drillMysqlUrl: undefined,
        maxUnverifiedHours: 48,
        binlogFlushSeconds: 30,
        keepDaily: 7,
        keepWeekly: 4,
        keepMonthly: 12,
      },
      stats: { snapshots: true, snapshotMinute: 5, hourlyRetentionDays: 90, dailyRetentionDays: 0, viewFlushSeconds: 20 },
      shutdownTimeoutSeconds: 30,
      shutdownDelaySeconds: 0,
      processes: 1,
    });
  });

  it("refuses a backup schedule that is not cron, and a backup key that is not 32 bytes of base64", () => {
    expect(() => parseSettings({ BACKUP_SCHEDULE: "every night" }, "/srv/shoal")).toThrow(/^BACKUP_SCHEDULE: "every night" is not a cron schedule/);
    expect(() => parseSettings({ BACKUP_DRILL_SCHEDULE: "61 * * * *" }, "/srv/shoal")).toThrow(/^BACKUP_DRILL_SCHEDULE: /);
    expect(() => parseSettings({ BACKUP_ENCRYPTION_KEY: "c2hvcnQ=" }, "/srv/shoal")).toThrow("BACKUP_ENCRYPTION_KEY: ");
    expect(() => parseSettings({ BACKUP_KEEP_DAILY: "-1" }, "/srv/shoal")).toThrow("BACKUP_KEEP_DAILY: ");
    expect(() => parseSettings({ BACKUP_BINLOG_FLUSH_SECONDS: "0" }, "/srv/shoal")).toThrow("BACKUP_BINLOG_FLUSH_SECONDS: ");
  });

  it("runs a cluster node as several processes on request, one per core with auto, and an embedded node as one", () => {
    expect(parseSettings({ ...CLUSTER, NODE_PROCESSES: "3" }, CWD).processes).toBe(3);
    expect(parseSettings({ ...CLUSTER, NODE_PROCESSES: "auto" }, CWD).processes).toBe(os.availableParallelism());
    expect(() => parseSettings({ ...CLUSTER, NODE_PROCESSES: "0" }, CWD)).toThrow(/^NODE_PROCESSES: /);
    expect(() => parseSettings({ ...CLUSTER, NODE_PROCESSES: "many" }, CWD)).toThrow(/^NODE_PROCESSES: /);
    expect(parseSettings({ NODE_PROCESSES: "1" }, CWD).processes).toBe(1);
    expect(() => parseSettings({ NODE_PROCESSES: "2" }, CWD)).toThrow(/^NODE_PROCESSES: more than 1 needs SHOAL_MODE=cluster/);
  });

  it("serves metrics on a listener of its own only when METRICS_PORT is set, and takes a token of at least 16 characters", () => {
    const settings = parseSettings({ METRICS_PORT: "9464", METRICS_HOST: "0.0.0.0", METRICS_TOKEN: "t".repeat(16) }, CWD);
    expect(settings.metrics).toEqual({ port: 9464, host: "0.0.0.0", token: "t".repeat(16) });
    expect(() => parseSettings({ METRICS_TOKEN: "short" }, CWD)).toThrow(/METRICS_TOKEN/);
    expect(() => parseSettings({ METRICS_PORT: "99999" }, CWD)).toThrow(/METRICS_PORT/);
  });

  it("takes the public URL, proxies, CORS origins and session times", () => {
    const settings = parseSettings(
      {
        SHOAL_PUBLIC_URL: "https://media.example.org/",
        TRUSTED_PROXIES: "loopback, 10.0.0.0/8",
        CORS_ORIGINS: "https://app.example.org/path",
        SESSION_IDLE_TIMEOUT_SECONDS: "600",
        SHOAL_SECRET: "s".repeat(32),
      },
      CWD,
    );
    expect(settings.publicUrl).toBe("https://media.example.org");
    expect(settings.trustedProxies).toEqual(["loopback", "10.0.0.0/8"]);
    expect(settings.corsOrigins).toEqual(["https://app.example.org"]);
    expect(settings.sessions.idleTimeoutSeconds).toBe(600);
    expect(settings.secret).toBe("s".repeat(32));
  });

  it.each([
    ["TRUSTED_PROXIES", "everyone"],
    ["CORS_ORIGINS", "*"],
    ["SHOAL_SECRET", "short"],
    ["SHOAL_PUBLIC_URL", "media.example.org"],
  ])("refuses a malformed %s", (variable, value) => {
    expect(() => parseSettings({ [variable]: value }, CWD)).toThrow(new RegExp(`^${variable}: `));
  });

  it("requires SHOAL_SECRET in cluster mode", () => {
    const { SHOAL_SECRET: _omitted, ...withoutSecret } = CLUSTER;
    expect(() => parseSettings(withoutSecret, CWD)).toThrow(/^SHOAL_SECRET: required when SHOAL_MODE=cluster/);
  });

  it("resolves a relative SHOAL_DATA_DIR against the given cwd and keeps an absolute one", () => {
    expect(parseSettings({ SHOAL_DATA_DIR: "var/shoal" }, CWD).dataDir).toBe(path.join(CWD, "var/shoal"));
    const absolute = parseSettings({ SHOAL_DATA_DIR: "/mnt/shoal" }, CWD);
    expect(absolute.dataDir).toBe("/mnt/shoal");
    expect(absolute.databases.media).toEqual({ kind: "sqlite", file: "/mnt/shoal/media.sqlite" });
    expect(absolute.storage).toEqual({ kind: "local", dir: "/mnt/shoal/objects" });
  });

  it("treats blank variables as unset and trims values", () => {
    const settings = parseSettings({ PORT: "", LOG_LEVEL: "   ", SERVICES: "", NODE_ID: " node-a " }, CWD);
    expect(settings.port).toBe(3000);
    expect(settings.logLevel).toBe("info");
    expect(settings.services).toEqual(["api", "users", "media", "site", "processing", "backup"]);
    expect(settings.nodeId).toBe("node-a");
    expect(parseSettings({ PORT: " 8080 " }, CWD).port).toBe(8080);
  });

  it("does not require any cluster variable", () => {
    expect(() => parseSettings({ SHOAL_MODE: "embedded" }, CWD)).not.toThrow();
  });

  it("takes the promotion's block window, semi-sync and admin account, and rejects a malformed one", () => {
    const settings = parseSettings({ DB_FAILOVER_BLOCK_SECONDS: "60", DB_SEMI_SYNC: "true", MYSQL_ADMIN_USER: "failover", MYSQL_ADMIN_PASSWORD: "s3cret" });
    expect(settings.failover).toEqual({ blockSeconds: 60, semiSync: true, adminUser: "failover", adminPassword: "s3cret" });
    expect(() => parseSettings({ DB_FAILOVER_BLOCK_SECONDS: "0" })).toThrow(/^DB_FAILOVER_BLOCK_SECONDS: /);
    expect(() => parseSettings({ DB_SEMI_SYNC: "sometimes" })).toThrow(/^DB_SEMI_SYNC: /);
  });

  it("derives the rejoin lag as half the maximum replica lag", () => {
    const { replication } = parseSettings({ DB_MAX_REPLICA_LAG_SECONDS: "10" }, CWD);
    expect(replication.maxLagSeconds).toBe(10);
    expect(replication.rejoinLagSeconds).toBe(5);
  });

  it("takes FFMPEG_THREADS (1-16) and rejects anything else", () => {
    expect(parseSettings({ FFMPEG_THREADS: "1" }, CWD).jobs.ffmpegThreads).toBe(1);
    expect(parseSettings({ FFMPEG_THREADS: "16" }, CWD).jobs.ffmpegThreads).toBe(16);
    for (const bad of ["0", "17", "1.5", "two"]) expectOneLineNaming(settingsError({ FFMPEG_THREADS: bad }), "FFMPEG_THREADS");
  });

  it("refuses a JOB_DEADLINE_SECONDS under two heartbeats of a running job, which would take live jobs for dead ones", () => {
    const error = settingsError({ JOB_DEADLINE_SECONDS: "1" });
    expectOneLineNaming(error, "JOB_DEADLINE_SECONDS");
    expect(error.message).toMatch(/sign of life every 1 s.*at least twice that/);
    expect(parseSettings({ JOB_DEADLINE_SECONDS: "2" }, CWD).jobs.deadlineSeconds).toBe(2);
    // The deadline bounds nothing above: a reconciler taking a year to give up is the operator's choice.
    expect(parseSettings({ JOB_DEADLINE_SECONDS: String(365 * 24 * 3600) }, CWD).jobs.deadlineSeconds).toBe(365 * 24 * 3600);
  });

  it("keeps tombstones MEDIA_TOMBSTONE_RETENTION_DAYS days (a whole number, at least 1)", () => {
    expect(parseSettings({ MEDIA_TOMBSTONE_RETENTION_DAYS: "7" }, CWD).mediaTombstoneRetentionDays).toBe(7);
    for (const bad of ["0", "-1", "1.5", "month"]) expectOneLineNaming(settingsError({ MEDIA_TOMBSTONE_RETENTION_DAYS: bad }), "MEDIA_TOMBSTONE_RETENTION_DAYS");
  });

  it("serves source maps only with WEB_SOURCE_MAPS=true (or 1/yes)", () => {
    for (const on of ["true", "1", "yes"]) expect(parseSettings({ WEB_SOURCE_MAPS: on }, CWD).webSourceMaps).toBe(true);
    expect(parseSettings({ WEB_SOURCE_MAPS: "false" }, CWD).webSourceMaps).toBe(false);
    expectOneLineNaming(settingsError({ WEB_SOURCE_MAPS: "sometimes" }), "WEB_SOURCE_MAPS");
  });

  it("turns response caching off with CACHE_ENABLED=false (or 0/no) and rejects other words", () => {
    for (const off of ["false", "0", "no"]) expect(parseSettings({ CACHE_ENABLED: off }, CWD).cache.enabled).toBe(false);
    for (const on of ["true", "1", "yes"]) expect(parseSettings({ CACHE_ENABLED: on }, CWD).cache.enabled).toBe(true);
    // Cluster nodes keep their Redis URL (read-your-writes marks live there) with caching off.
    expect(parseSettings({ ...CLUSTER, CACHE_ENABLED: "false" }, CWD).cache).toEqual({
      kind: "redis",
      enabled: false,
      url: "redis://cache:6379",
      ttlSeconds: 60,
    });
    expectOneLineNaming(settingsError({ CACHE_ENABLED: "off" }), "CACHE_ENABLED");
  });

  it("rejects an unknown SHOAL_MODE and LOG_LEVEL naming the variable", () => {
    expectOneLineNaming(settingsError({ SHOAL_MODE: "Cluster" }), "SHOAL_MODE");
    expectOneLineNaming(settingsError({ LOG_LEVEL: "verbose" }), "LOG_LEVEL");
  });
});

describe("parseSettings: PORT", () => {
  // 0 asks the OS for a free port (the listener reports the one it got).
  it.each(["0", "1", "3000", "65535"])("accepts %s", (port) => {
    expect(parseSettings({ PORT: port }, CWD).port).toBe(Number(port));
  });

  it.each(["65536", "-1", "80.5", "abc", "http"])("rejects %j with one line naming PORT", (port) => {
    const error = settingsError({ PORT: port });
    expectOneLineNaming(error, "PORT");
    expect(error.message).toContain(JSON.stringify(port));
  });
});

describe("parseSettings: SERVICES", () => {
  it("parses a subset, trimming spaces and dropping empty entries and duplicates", () => {
    expect(parseSettings({ SERVICES: " users, media ,,users" }, CWD).services).toEqual(["users", "media"]);
    expect(parseSettings({ SERVICES: "api" }, CWD).services).toEqual(["api"]);
  });

  it("rejects an unknown service, naming it and the known ones", () => {
    const error = settingsError({ SERVICES: "api,uploads" });
    expectOneLineNaming(error, "SERVICES");
    expect(error.message).toBe('SERVICES: unknown service "uploads" (known: api, users, media, site, processing, backup)');
  });
});

describe("parseSettings: the result is deeply frozen", () => {
  it.each([
    ["embedded", {}],
    ["cluster", { ...CLUSTER, MYSQL_REPLICA_URLS: "mysql://r1:3306" }],
  ])("in %s mode every nested object is frozen", (_mode, env) => {
    const settings = parseSettings(env, CWD);
    const nested: unknown[] = [
      settings,
      settings.services,
      settings.databases,
      settings.databases.membership,
      settings.databases.media,
      settings.databases.site,
      settings.replication,
      settings.transporter,
      settings.cache,
      settings.storage,
    ];
    if (settings.databases.media.kind === "mysql") nested.push(settings.databases.media.replicaUrls);
    for (const value of nested) expect(Object.isFrozen(value)).toBe(true);
  });

  it("throws on assignment (test files run in strict mode) and keeps the value", () => {
    const settings = parseSettings({}, CWD);
    expect(() => {
      (settings as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (settings.cache as { ttlSeconds: number }).ttlSeconds = 1;
    }).toThrow(TypeError);
    expect(() => {
      (settings.services as string[]).push("extra");
    }).toThrow(TypeError);
    expect(settings.port).toBe(3000);
    expect(settings.cache.ttlSeconds).toBe(60);
    expect(settings.services).toHaveLength(6);
  });
});

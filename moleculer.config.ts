import os from "node:os";
import type { BrokerOptions, Context, ServiceBroker } from "moleculer";
import { Errors, MetricReporters } from "moleculer";
import type { Settings } from "./config/settings";
import { Middleware as ChannelsMiddleware } from "@moleculer/channels";
import { jitteredTtl } from "./lib/cache/cache-keys";
import { redisClientOptions } from "./lib/cache/redis-circuit";
import type { WatchedClient } from "./lib/cache/redis-circuit";
import { guardSharedCache } from "./lib/cache/shared-cache-guard";
import type { GuardedCacher } from "./lib/cache/shared-cache-guard";
import { addLocalLayer } from "./lib/cache/local-layer";
import { runWithConsistencyKey } from "./lib/db/read-your-writes";
import { AppError } from "./lib/errors";
import { isSharedPage, SHARED_PAGE_LOCAL_ENTRIES, SHARED_PAGE_LOCAL_TTL_MS } from "./lib/media/media-cache";
import { CHANNEL_ADAPTER_CONNECTED_EVENT } from "./lib/service-contracts";
import { metricTimersMiddleware } from "./mixins/metric-timers.middleware";
import { paramsValidationMiddleware } from "./mixins/params-validation.middleware";
import { transportFailFastMiddleware } from "./mixins/transport-fail-fast.middleware";
import { transportStaysDownMiddleware } from "./mixins/transport-stays-down.middleware";

/** What the API and services put in ctx.meta. */
export interface ShoalMeta {
  /** The signed-in user, set by the gateway from the session. */
  user?: { id: string; role: "user" | "admin"; username: string };
  /** The session the request came with, and how it was presented. */
  session?: { id: string; via: "cookie" | "bearer" };
  /** Whose read-your-writes the call's writes count for, when not the signed-in user's (a worker writes for the item's owner). */
  consistencyKey?: string;
  /** The client's address (through trusted proxies only). */
  ip?: string;
  userAgent?: string;
  /** Set by users actions for the gateway: a session cookie to set, or to clear. */
  $setSession?: { token: string; maxAgeSeconds: number };
  $clearSession?: boolean;
  /** Set by the gateway to answer with another status than 200. */
  $statusCode?: number;
  /** Set by the gateway when it answers with bytes it has already serialised. */
  $responseType?: string;
  $location?: string;
  $cache?: boolean;
}

/** The Prometheus reporter without its own HTTP server: the gateway serves `/metrics`. */
export class GatewayPrometheusReporter extends MetricReporters.Prometheus {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override init(registry: any): void {
    MetricReporters.Base.prototype.init.call(this, registry);
    const labels = (this as unknown as { opts: { defaultLabels: unknown } }).opts.defaultLabels;
    (this as unknown as { defaultLabels: unknown }).defaultLabels =
      typeof labels === "function" ? labels.call(this, registry) : labels;
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  render(): string {
    return (this as unknown as { generatePrometheusResponse(): string }).generatePrometheusResponse();
  }
}

/** Moleculer's default metrics that name the host, its network or its user, or the process's command line: never served. */
export const HOST_IDENTIFYING_METRICS = [
  "os.hostname",
  "os.user.**",
  "os.network.**",
  "os.cpu.info.**",
  "os.type",
  "os.release",
  "os.arch",
  "os.platform",
  "process.arguments",
  "process.pid",
  "process.ppid",
] as const;

/**
 * Moleculer's metrics that are updated on every action call, cache access or transporter packet and cost the most
 * per request (a histogram with quantiles, in-flight gauges, per-packet counters), and that `/metrics` does not
 * serve: their updates are dropped. Request and error counts, cache gets and hits, and process metrics stay.
 */
export const UNSERVED_METRICS = [
  "moleculer.request.time",
  "moleculer.request.active",
  "moleculer.request.levels",
  "moleculer.event.received.time",
  "moleculer.event.received.active",
  "moleculer.cacher.get.time",
  "moleculer.cacher.set.time",
  "moleculer.cacher.del.time",
  "moleculer.cacher.clean.time",
  "moleculer.transit.publish.total",
  "moleculer.transit.receive.total",
  "moleculer.transit.requests.active",
  "moleculer.transit.streams.send.active",
  "moleculer.transporter.packets.sent.total",
  "moleculer.transporter.packets.sent.bytes",
  "moleculer.transporter.packets.received.total",
  "moleculer.transporter.packets.received.bytes",
] as const;

type MetricUpdates = Record<"increment" | "decrement" | "set" | "observe", (...args: unknown[]) => unknown>;

/**
 * Makes the unserved metrics' updates no-ops. Moleculer registers its metrics unconditionally and the Prometheus
 * reporter's excludes only filter what is rendered, so excluding alone would leave the cost of every update.
 * A middleware given as a function runs when it is registered: after the cacher registered its metrics, before
 * the built-in Metrics middleware registers the request metrics.
 */
function unservedMetricsMiddleware(broker: ServiceBroker): { name: string } {
  const unserved = new Set<string>(UNSERVED_METRICS);
  const registry = broker.metrics;
  const silence = (metric: unknown): void => {
    if (!metric) return;
    const noop = () => undefined;
    Object.assign(metric as MetricUpdates, { increment: noop, decrement: noop, set: noop, observe: noop });
  };
  for (const name of unserved) if (registry.hasMetric(name)) silence(registry.getMetric(name));
  const register = registry.register.bind(registry);
  registry.register = (options) => {
    const metric = register(options);
    if (unserved.has(options.name)) silence(metric);
    return metric;
  };
  return { name: "UnservedMetrics" };
}

/** Every action runs with its caller as the read-your-writes key, so the data layer needs no argument for it. */
const consistencyKeyMiddleware = {
  name: "ConsistencyKey",
  localAction(next: (ctx: Context) => Promise<unknown>) {
    return (ctx: Context) => {
      const meta = ctx.meta as ShoalMeta;
      return runWithConsistencyKey(meta.consistencyKey ?? meta.user?.id, () => next(ctx));
    };
  },
};

type Unlock = () => Promise<void>;

/**
 * Adjusts the cacher: spreads expiry so that entries written together do not expire
 * together, treats a lock that vanished before its release (a pattern clean such as
 * `users.get:**` also removes `...-lock` keys) as released instead of failing the read,
 * closes quietly, and keeps the public feed's pages in memory for a moment (lib/cache/local-layer.ts).
 */
const cacherTuningMiddleware = {
  name: "CacherTuning",
  created(broker: ServiceBroker) {
    const cacher = broker.cacher as
      | (NonNullable<ServiceBroker["cacher"]> & { tryLock?: (key: string | string[], ttl?: number) => Promise<Unlock> })
      | undefined;
    if (!cacher) return;
    // The Redis cacher: requests go on without it while Redis is down or slow (lib/cache/shared-cache-guard.ts).
    const redisClient = (cacher as { client?: WatchedClient }).client;
    if (redisClient) guardSharedCache(cacher as unknown as GuardedCacher, redisClient);
    const set = cacher.set.bind(cacher);
    const defaultTtl = (cacher.opts as { ttl?: number }).ttl;
    cacher.set = (key: string, data: unknown, ttl?: number) => {
      const base = ttl ?? defaultTtl;
      return set(key, data, base ? jitteredTtl(base) : base);
    };
    const tolerant =
      (acquire: (key: string | string[], ttl?: number) => Promise<Unlock>) => (key: string | string[], ttl?: number) =>
        acquire(key, ttl).then((unlock): Unlock => () => unlock().catch(() => undefined));
    cacher.lock = tolerant(cacher.lock.bind(cacher));
    if (cacher.tryLock) cacher.tryLock = tolerant(cacher.tryLock.bind(cacher));
    // Redis answers QUIT by closing the connection, which ioredis may report as "Connection is closed": the goal, not a failure.
    const close = cacher.close.bind(cacher);
    cacher.close = () => Promise.resolve(close()).catch((error: Error) => {
      if (error.message !== "Connection is closed.") throw error;
    });
    addLocalLayer(cacher, { holds: isSharedPage, ttlMs: SHARED_PAGE_LOCAL_TTL_MS, entries: SHARED_PAGE_LOCAL_ENTRIES });
  },
};

/** Turns the plain errors of lib/ into Moleculer errors, which keep status and code across the transporter. */
export function toMoleculerError(error: unknown): unknown {
  if (error instanceof AppError) {
    return new Errors.MoleculerError(error.message, error.status, error.code, {
      fields: error.fields ?? {},
      retryAfterSeconds: error.retryAfterSeconds,
    });
  }
  return error;
}

/**
 * Durable job channels (@moleculer/channels): NATS JetStream in cluster mode; in embedded mode
 * the in-process adapter (no redelivery of its own: retries, dead letters and lost messages are
 * handled by the worker and the reconciler, the same way on both).
 */
function channelsMiddleware(settings: Settings): unknown {
  const adapter =
    settings.transporter.kind === "nats"
      ? { type: "NATS", options: { nats: { url: settings.transporter.url }, maxInFlight: settings.jobs.maxInFlight } }
      : { type: "Fake" };
  return ChannelsMiddleware({ adapter } as unknown as Parameters<typeof ChannelsMiddleware>[0]);
}

/**
 * Placed after the channels middleware, whose own `started` hook connects its adapter once every service
 * has started (middleware hooks run in order): tells the local services the adapter is connected.
 */
const channelsConnectedMiddleware = {
  name: "ChannelsConnected",
  started(broker: ServiceBroker) {
    broker.broadcastLocal(CHANNEL_ADAPTER_CONNECTED_EVENT);
  },
};

export function brokerOptions(settings: Settings): BrokerOptions {
  const lockTtlMs = 15_000;
  const jobsOnThisNode = settings.services.some((name) => name === "media" || name === "processing");
  return {
    namespace: "shoal",
    nodeID: settings.nodeId ?? `${os.hostname()}-${process.pid}`,
    logger: { type: "Console", options: { formatter: "short", colors: process.stdout.isTTY, moduleColors: false } },
    logLevel: settings.logLevel,
    transporter: settings.transporter.kind === "nats" ? { type: "NATS", options: { url: settings.transporter.url } } : undefined,
    cacher: !settings.cache.enabled
      ? undefined
      : settings.cache.kind === "redis"
        ? {
            type: "Redis",
            options: {
              prefix: "shoal-cache",
              ttl: settings.cache.ttlSeconds,
              redis: redisClientOptions(settings.cache.url),
              // The lock's ttl goes to redlock in milliseconds.
              lock: { enabled: true, ttl: lockTtlMs },
              redlock: { retryCount: 40, retryDelay: 50, retryJitter: 25, driftFactor: 0.01 },
            },
          }
        : { type: "Memory", options: { ttl: settings.cache.ttlSeconds, clone: true, lock: { enabled: true, ttl: lockTtlMs } } },
    // server.ts handles SIGTERM and SIGINT: it drains the node before the broker stops.
    skipProcessEventRegistration: true,
    requestTimeout: 30_000,
    retryPolicy: { enabled: false },
    circuitBreaker: { enabled: false },
    registry: { strategy: "RoundRobin", preferLocal: true },
    // The typings accept only reporter names and options; Moleculer also takes an instance.
    // Process metrics are collected under NODE_ENV=test too, so that tests see what production serves.
    metrics: { enabled: true, collectProcessMetrics: true, reporter: [new GatewayPrometheusReporter({ excludes: [...HOST_IDENTIFYING_METRICS, ...UNSERVED_METRICS] }) as unknown as string] },
    tracing: { enabled: false },
    middlewares: [unservedMetricsMiddleware, metricTimersMiddleware, consistencyKeyMiddleware, cacherTuningMiddleware, paramsValidationMiddleware, transportFailFastMiddleware, transportStaysDownMiddleware, ...(jobsOnThisNode ? [channelsMiddleware(settings), channelsConnectedMiddleware] : [])] as unknown as BrokerOptions["middlewares"],
    errorHandler(error) {
      throw toMoleculerError(error);
    },
  };
}

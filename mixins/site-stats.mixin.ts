import type { Context, Service, ServiceBroker, ServiceSchema } from "moleculer";
import { authorize } from "../lib/auth/policy";
import { ConflictError, UnauthenticatedError, ValidationError } from "../lib/errors";
import type { Runtime } from "../lib/runtime";
import { cronSchedule } from "../lib/scheduling/schedule";
import { PeriodicTask } from "../lib/scheduling/periodic-task";
import type { MediaWindow, OwnerStats } from "../lib/stats/media-stats-repository";
import { BUCKET_NAMES, METRIC_NAMES } from "../lib/stats/metrics";
import type { Bucket } from "../lib/stats/metrics";
import { SnapshotJob } from "../lib/stats/snapshot-job";
import type { SnapshotSources } from "../lib/stats/snapshot-job";
import type { SnapshotRepository } from "../lib/stats/snapshot-repository";
import { seriesCsv, summaryCsv } from "../lib/stats/stats-csv";
import { parseTime, rangeOf, StatsQueries, SUMMARY_RANGES } from "../lib/stats/stats-queries";
import type { SummaryRange } from "../lib/stats/stats-queries";
import type { UsersWindow } from "../lib/stats/user-stats-repository";
import type { ShoalMeta } from "../moleculer.config";

type StatsContext<P> = Context<P, ShoalMeta>;
const format = { type: "enum", values: ["json", "csv"], default: "json" };
/** The periodic task that takes snapshots, and its lease. */
const SNAPSHOT_TASK = "stats-snapshots";
const BACKFILL_LEASE_MS = 60 * 60_000;
/** How long a dashboard summary is reused (by every admin, on every node sharing the cache). */
const SUMMARY_CACHE_SECONDS = 60;
const isoTime = { type: "string", min: 1, max: 40 };

/** Answers CSV instead of JSON when asked to. */
function answer<T>(ctx: StatsContext<{ format: "json" | "csv" }>, body: T, csv: (body: T) => string, name: string): T | string {
  if (ctx.params.format !== "csv") return body;
  ctx.meta.$responseType = "text/csv; charset=utf-8";
  (ctx.meta as ShoalMeta & { $responseHeaders?: Record<string, string> }).$responseHeaders = {
    "Content-Disposition": `attachment; filename="${name}.csv"`,
  };
  return csv(body);
}

/** Cache gets and hits of every node since it started, from Moleculer's metrics; null when no node has a cache. */
async function cacheHitRatio(broker: ServiceBroker): Promise<number | null> {
  const nodes = (await broker.call<{ id: string }[], object>("$node.list", { onlyAvailable: true })).map((node) => node.id);
  let gets = 0;
  let hits = 0;
  for (const nodeID of nodes) {
    const metrics = await broker
      .call<{ name: string; values: { value: number }[] }[], object>("$node.metrics", { includes: ["moleculer.cacher.get.total", "moleculer.cacher.found.total"] }, { nodeID })
      .catch(() => []);
    const total = (name: string) => metrics.filter((m) => m.name === name).reduce((sum, m) => sum + m.values.reduce((a, v) => a + Number(v.value ?? 0), 0), 0);
    gets += total("moleculer.cacher.get.total");
    hits += total("moleculer.cacher.found.total");
  }
  return gets === 0 ? null : hits / gets;
}

/** The worst lag of any replica of the three databases; null when there is no replica. */
async function worstReplicaLag(broker: ServiceBroker): Promise<number | null> {
  let worst: number | null = null;
  for (const service of ["users", "media", "site"]) {
    const status = await broker
      .call<{ health: { replicas: { lagSeconds: number | null }[] } }>(`${service}.replicationStatus`)
      .catch(() => undefined);
    for (const replica of status?.health.replicas ?? []) if (replica.lagSeconds !== null) worst = Math.max(worst ?? 0, replica.lagSeconds);
  }
  return worst;
}

function sourcesThrough(broker: ServiceBroker): SnapshotSources {
  return {
    users: (from, to) => broker.call<UsersWindow, object>("users.statsWindow", { from, to }),
    media: (from, to) => broker.call<MediaWindow, object>("media.statsWindow", { from, to }),
    async usernames(ids) {
      if (ids.length === 0) return new Map();
      const found = await broker.call<{ users: { id: string; username: string }[] }, object>("users.getMany", { ids });
      return new Map(found.users.map((user) => [user.id, user.username]));
    },
    live: async () => ({ cacheHitRatio: await cacheHitRatio(broker), replicaLagMaxSeconds: await worstReplicaLag(broker) }),
  };
}

/** The site service's statistics: hourly and daily snapshots on a schedule, and the admin and "my stats" reads. */
export function siteStatsMixin(runtime: Runtime, repository: () => SnapshotRepository): Partial<ServiceSchema> {
  const { stats } = runtime.settings;
  let job: SnapshotJob;
  let queries: StatsQueries;
  let task: PeriodicTask<{ period: string; start: number }[]>;
  const snapshotTaskOptions = (log: Service["logger"]) => ({
    name: SNAPSHOT_TASK,
    schedule: cronSchedule(`${stats.snapshotMinute} * * * *`, "UTC"),
    leaseMs: 30 * 60_000,
    run: () => job.runDue(),
    log,
  });

  return {
    created(this: Service) {
      job = new SnapshotJob({
        sources: sourcesThrough(this.broker),
        repository: repository(),
        retention: { hourlyDays: stats.hourlyRetentionDays, dailyDays: stats.dailyRetentionDays },
      });
      // One lease (lib/scheduling) for every snapshot run: scheduled, asked for, or a backfill.
      task = new PeriodicTask({ ...snapshotTaskOptions(this.logger), lock: runtime.leaseLock(SNAPSHOT_TASK) });
      queries = new StatsQueries(repository(), stats.hourlyRetentionDays);
    },

    started(this: Service) {
      if (!stats.snapshots) return;
      task = runtime.periodicTasks.schedule(snapshotTaskOptions(this.logger));
    },

    async stopped() {
      if (stats.snapshots) await runtime.periodicTasks.unschedule(task);
      else await task.stop();
    },

    actions: {
      /** GET /api/admin/stats: one metric over time, in buckets. */
      statsSeries: {
        description:
          "Admins: one metric over time, in buckets (`auto`: the bucket grows with the range). `format=csv` answers text/csv with the same points (`t,<metric>`).",
        params: {
          $$strict: true,
          metric: { type: "enum", values: [...METRIC_NAMES] },
          from: isoTime,
          to: isoTime,
          bucket: { type: "enum", values: ["auto", ...BUCKET_NAMES], default: "auto" },
          format,
        },
        async handler(ctx: StatsContext<{ metric: string; from: string; to: string; bucket: Bucket | "auto"; format: "json" | "csv" }>) {
          authorize(ctx.meta.user, "read", { kind: "site-stats" }, "statistics");
          const { metric, bucket } = ctx.params;
          const series = await queries.series(metric, parseTime(ctx.params.from, "from"), parseTime(ctx.params.to, "to"), bucket);
          return answer(ctx, series, seriesCsv, `${metric}-${series.bucket}`);
        },
      },

      /** GET /api/admin/stats/summary: KPIs against the previous period, top lists, failures. */
      statsSummary: {
        description:
          "Admins: KPIs with the change against the previous period, top uploaders, top items and failures, over `range` (default 7d) or `from`..`to`. `format=csv` answers the same numbers as sectioned CSV.",
        params: {
          $$strict: true,
          range: { type: "enum", values: Object.keys(SUMMARY_RANGES), optional: true },
          from: { ...isoTime, optional: true },
          to: { ...isoTime, optional: true },
          format,
        },
        async handler(ctx: StatsContext<{ range?: SummaryRange; from?: string; to?: string; format: "json" | "csv" }>) {
          authorize(ctx.meta.user, "read", { kind: "site-stats" }, "statistics");
          const { range, from, to } = ctx.params;
          if ((from === undefined) !== (to === undefined) || (range !== undefined && from !== undefined)) {
            throw new ValidationError("Give either a range or both from and to.", { range: "either range, or from and to" });
          }
          const window = from !== undefined && to !== undefined ? { from: parseTime(from, "from"), to: parseTime(to, "to") } : rangeOf(range ?? "7d", Date.now());
          // Cached after the admin check (JSON and CSV share it): snapshots are hourly, so a minute-old summary is as good.
          const cacher = ctx.broker.cacher;
          const key = `site.statsSummary:${range ?? ""}|${from ?? ""}|${to ?? ""}`;
          const cached = cacher ? ((await cacher.get(key)) as Awaited<ReturnType<StatsQueries["summary"]>> | null) : null;
          const summary = cached ?? (await queries.summary(window));
          if (cacher && !cached) await cacher.set(key, summary, SUMMARY_CACHE_SECONDS);
          return answer(ctx, summary, summaryCsv, "summary");
        },
      },

      /** GET /api/me/stats: the caller's storage against quota, uploads per day (30 days), and their items' views. */
      myStats: {
        description: "The caller's storage used and quota, uploads per day over the last 30 days, and the views of each of their items.",
        params: { $$strict: true },
        async handler(ctx: StatsContext<Record<string, never>>) {
          if (!ctx.meta.user) throw new UnauthenticatedError();
          const [me, mine] = await Promise.all([
            ctx.call<{ user: { usedBytes: number; quotaBytes: number } }>("users.me"),
            ctx.call<OwnerStats, object>("media.ownerStats", { ownerId: ctx.meta.user.id, days: 30 }),
          ]);
          return {
            usedBytes: Number(me.user.usedBytes),
            quotaBytes: Number(me.user.quotaBytes),
            uploads: mine.uploads.map((point) => ({ t: new Date(point.t).toISOString(), value: point.value })),
            items: mine.items,
          };
        },
      },

      /** Takes the due snapshots now (operators, tests): the hour just ended, and the day just ended if not yet taken. */
      takeSnapshots: {
        visibility: "public",
        params: { $$strict: true },
        async handler() {
          const run = await task.runNow("demand");
          if (run.outcome === "failed") throw new Error(`the snapshots were not taken: ${run.reason ?? "unknown error"}`);
          // Skipped: another node (or this one) is taking them now.
          return { taken: run.result ?? [] };
        },
      },

      /** Computes past periods from existing rows (daily from `from`, hourly within retention). */
      backfillSnapshots: {
        visibility: "public",
        params: { $$strict: true, from: isoTime },
        async handler(ctx: Context<{ from: string }>) {
          const from = parseTime(ctx.params.from, "from");
          if (from >= Date.now()) throw new ValidationError("The backfill starts in the future.", { from: "must be in the past" });
          const release = await runtime.leaseLock(SNAPSHOT_TASK).tryAcquire(BACKFILL_LEASE_MS);
          if (!release) throw new ConflictError("Another node is taking snapshots; try again in a moment.");
          try {
            return { periods: await job.backfill(from) };
          } finally {
            await release();
          }
        },
      },
    },
  };
}

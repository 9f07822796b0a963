/**
 * The statistics benchmark: `npm run bench:stats` (see bench/README.md).
 *
 * In one run, on loopback: private MariaDB primary + replica, Redis, NATS and S3 (scripts/services); 10,000
 * users and 100,000 media (bench/feed-seed.ts) and one year of snapshots, hourly and daily (8,760 hourly ones,
 * test/support/stats-year.ts), in Shoal's databases. Two Shoal nodes in cluster mode (SERVICES=api,users,media,site):
 * one with the cache, one with CACHE_ENABLED=false. autocannon loads each with the same connections and duration:
 *   (a) GET /api/admin/stats/summary?range=12m as an admin, cached (the summary is kept a minute);
 *   (b) the same on the node without a cache: every request reads the year of snapshots;
 *   (c) GET /api/media/:id of a public item by anonymous visitors: every request records a view;
 *   (d) the same item read by its owner: a plain cached read, no view recorded.
 * Goals: p99 of (a) under 50 ms and of (b) under 300 ms; (c)/(d) in requests per second at least 0.8.
 * Writes bench/results/stats.json.
 *
 * Environment: BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (3), BENCH_CONNECTIONS (10), BENCH_OUTPUT.
 */
import autocannon from "autocannon";
import { parseSettings } from "../config/settings";
import type { SiteDatabase } from "../lib/db/schemas/site";
import { createDatabase } from "../lib/db/open-database";
import { MemoryExpiringStore } from "../lib/expiring-store";
import { requireBinaries } from "../scripts/services";
import { seedYearOfSnapshots } from "../test/support/stats-year";
import { Resources, interrupted, loadAverage1m, numberFromEnv, outputFromEnv, printWrittenTo, progress, registerAccount, round, runMain, startRun, statusCounts, stopOnInterrupt, writeReport } from "./harness/common";
import { loadRound } from "./harness/rounds";
import type { Measured } from "./harness/rounds";
import { startSeededCluster } from "./harness/seeded-cluster";

const GOALS = { cachedP99Ms: 50, uncachedP99Ms: 300, viewsOverRead: 0.8 };
const PASSWORD = "bench-stats-password-1";

const options = {
  seconds: numberFromEnv("BENCH_SECONDS", 10),
  warmupSeconds: numberFromEnv("BENCH_WARMUP_SECONDS", 3, { allowZero: true }),
  connections: numberFromEnv("BENCH_CONNECTIONS", 10, { integer: true }),
  output: outputFromEnv("stats"),
};

interface Figures {
  readonly requestsPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  readonly requests: number;
  readonly statuses: Record<string, number>;
  readonly errors: number;
}

let currentLoad: autocannon.Instance | undefined;

function load(url: string, headers: Record<string, string>, seconds: number): Promise<Figures> {
  return new Promise<autocannon.Result>((resolve, reject) => {
    if (interrupted()) return reject(new Error("interrupted"));
    currentLoad = autocannon({ url, headers, connections: options.connections, duration: seconds }, (error: unknown, result) =>
      error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(result),
    );
  })
    .finally(() => {
      currentLoad = undefined;
    })
    .then((result) => ({
      requestsPerSecond: round(result["2xx"] / result.duration, 1),
      latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
      requests: result.requests.total,
      statuses: statusCounts(result),
      errors: result.errors + result.timeouts,
    }));
}

const describe = (f: Figures) =>
  `${f.requestsPerSecond.toFixed(0)} req/s, p50 ${f.latencyMs.p50} ms, p99 ${f.latencyMs.p99} ms${f.errors > 0 || Object.keys(f.statuses).some((s) => !s.startsWith("2")) ? ` (!) ${JSON.stringify(f.statuses)}, ${f.errors} errors` : ""}`;

function measure(label: string, url: string, headers: Record<string, string>): Promise<Measured<Figures>> {
  return loadRound("stats", label, options, (seconds) => load(url, headers, seconds), describe);
}

async function getJson<T>(url: string, headers: Record<string, string> = {}): Promise<T> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(60_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

async function login(baseUrl: string, username: string): Promise<string> {
  const response = await fetch(`${baseUrl}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ login: username, password: PASSWORD }),
  });
  if (response.status !== 200) throw new Error(`login ${username}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { token: string }).token;
}

async function main(): Promise<void> {
  requireBinaries(["mariadbd", "mariadb-install-db", "redis-server", "nats-server"]);
  const resources = new Resources();
  stopOnInterrupt("stopping the nodes and private services", () => {
    currentLoad?.stop();
    return resources.releaseAll();
  });
  const { machine, date, code } = startRun(`autocannon -c${options.connections}, ${options.warmupSeconds} s warm-up + ${options.seconds} s measured per round`, { showLoad: true });
  try {
    const { mariadb, shoalEnv, seeded, startNode, firstNode: cached } = await startSeededCluster("stats", resources, {
      env: {
        RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000",
        // The year is seeded: the nodes take no snapshot of their own during the rounds.
        STATS_SNAPSHOTS: "false",
      },
      firstNode: { label: "cached", env: {} },
    });
    progress("stats", "seeding a year of snapshots: 365 daily and 8,760 hourly");
    const settings = parseSettings({ ...process.env, ...shoalEnv });
    const site = createDatabase<SiteDatabase>("site", settings.databases.site, settings.replication, new MemoryExpiringStore(), { info: () => undefined, warn: () => undefined });
    const seedStarted = Date.now();
    try {
      await site.connect();
      await seedYearOfSnapshots(site, [], Date.now(), 365);
    } finally {
      await site.close();
    }
    const snapshotSeedSeconds = round((Date.now() - seedStarted) / 1000, 1);
    await mariadb.waitForReplicaCatchUp(0, 300_000);
    progress("stats", `seeded in ${snapshotSeedSeconds} s; the replica has caught up`);

    const uncached = await startNode("uncached", { CACHE_ENABLED: "false" });
    const admin = await registerAccount(cached.baseUrl, "benchadmin", PASSWORD);
    await mariadb.primary.query("UPDATE shoal_membership.users SET role = 'admin' WHERE id = ?", [admin.userId]);
    const adminToken = await login(cached.baseUrl, "benchadmin");
    const owner = await registerAccount(cached.baseUrl, "benchowner", PASSWORD);
    const feed = await getJson<{ items: { id: string }[] }>(`${cached.baseUrl}/api/media?scope=public&limit=1`);
    const itemId = feed.items[0]?.id;
    if (itemId === undefined) throw new Error("the public feed is empty");
    await mariadb.primary.query("UPDATE shoal_media.media SET owner_id = ? WHERE id = ?", [owner.userId, itemId]);
    await mariadb.waitForReplicaCatchUp(0, 60_000);

    const summaryPath = "/api/admin/stats/summary?range=12m";
    const adminHeaders = { authorization: `Bearer ${adminToken}` };
    const summary = await getJson<{ kpis: unknown[]; topItems: unknown[]; range: { bucket: string } }>(`${uncached.baseUrl}${summaryPath}`, adminHeaders);
    progress("stats", `summary over 12 months: ${summary.kpis.length} KPIs, ${summary.topItems.length} top items, bucket ${summary.range.bucket}`);

    const loadBefore = loadAverage1m();
    const a = await measure("(a) summary, cached", `${cached.baseUrl}${summaryPath}`, adminHeaders);
    const b = await measure("(b) summary, uncached", `${uncached.baseUrl}${summaryPath}`, adminHeaders);
    const c = await measure("(c) item read by visitors (views recorded)", `${cached.baseUrl}/api/media/${itemId}`, { "user-agent": "bench-stats-visitor" });
    const d = await measure("(d) item read by its owner (plain cached read)", `${cached.baseUrl}/api/media/${itemId}`, { authorization: `Bearer ${owner.token}` });
    const loadAfter = loadAverage1m();

    // The views were recorded: flushed within seconds, the owner sees them.
    await new Promise((resolve) => setTimeout(resolve, (settings.stats.viewFlushSeconds + 2) * 1000));
    const counted = await getJson<{ media: { views?: number } }>(`${cached.baseUrl}/api/media/${itemId}`, { authorization: `Bearer ${owner.token}` });

    const viewsOverRead = round(c.figures.requestsPerSecond / d.figures.requestsPerSecond, 2);
    const goal = {
      statement: `p99 of the 12-month summary under ${GOALS.cachedP99Ms} ms cached and ${GOALS.uncachedP99Ms} ms uncached; reads recording views / plain cached reads of the same item >= ${GOALS.viewsOverRead}`,
      cachedP99Ms: a.figures.latencyMs.p99,
      uncachedP99Ms: b.figures.latencyMs.p99,
      viewsOverRead,
      met: {
        cached: a.figures.latencyMs.p99 < GOALS.cachedP99Ms,
        uncached: b.figures.latencyMs.p99 < GOALS.uncachedP99Ms,
        views: viewsOverRead >= GOALS.viewsOverRead,
      },
    };
    const report = {
      benchmark: "stats",
      date,
      machine,
      code: code ?? null,
      loadAverage1m: { before: loadBefore, after: loadAfter },
      load: { tool: "autocannon", connections: options.connections, warmupSeconds: options.warmupSeconds, measuredSeconds: options.seconds },
      setup: {
        shoal: "cluster mode; two nodes with SERVICES=api,users,media,site (one with CACHE_ENABLED=false); MariaDB primary + 1 replica, Redis, NATS, s3rver on loopback",
        data: { ...seeded, dailySnapshots: 365, hourlySnapshots: 365 * 24, snapshotSeedSeconds },
        summary: `${summaryPath}, ${summary.kpis.length} KPIs, bucket ${summary.range.bucket}`,
        viewsCountedByOwnerAfterFlush: counted.media.views ?? null,
      },
      goal,
      rounds: { a, b, c, d },
    };
    writeReport(options.output, report);
    console.log(`\n${"".padEnd(50)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}`);
    for (const [name, value] of Object.entries(report.rounds)) {
      const f = value.figures;
      console.log(`  ${name.padEnd(48)}${f.requestsPerSecond.toFixed(0).padStart(9)}${String(f.latencyMs.p50).padStart(9)}${String(f.latencyMs.p99).padStart(9)}`);
    }
    console.log(`summary p99: cached ${goal.cachedP99Ms} ms (goal < ${GOALS.cachedP99Ms}) ${goal.met.cached ? "met" : "not met"}; uncached ${goal.uncachedP99Ms} ms (goal < ${GOALS.uncachedP99Ms}) ${goal.met.uncached ? "met" : "not met"}`);
    console.log(`views recorded / plain read: c/d = ${viewsOverRead} (goal >= ${GOALS.viewsOverRead}) ${goal.met.views ? "met" : "not met"}; the owner sees ${String(counted.media.views)} views`);
    console.log(`load average (1 min): ${loadBefore} before, ${loadAfter} after the rounds`);
    printWrittenTo(options.output);
  } finally {
    await resources.releaseAll();
  }
}

runMain(main);

/**
 * The snapshot job against real databases (SQLite, and MariaDB), with rows whose numbers are known:
 * exact figures for a day and an hour, a second run that changes nothing, the lease that lets one
 * taker through, retention, and the analysts' SQL views.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import type { DatabaseName, DatabaseSettings } from "../../config/settings";
import type { Database } from "../../lib/db/database";
import { createDatabase } from "../../lib/db/open-database";
import type { MediaDatabase } from "../../lib/db/schemas/media";
import type { MembershipDatabase } from "../../lib/db/schemas/membership";
import type { SiteDatabase } from "../../lib/db/schemas/site";
import { MemoryExpiringStore } from "../../lib/expiring-store";
import { MemoryLeaseLock } from "../../lib/jobs/lease-lock";
import { PeriodicTask } from "../../lib/scheduling/periodic-task";
import { cronSchedule } from "../../lib/scheduling/schedule";
import { MediaStatsRepository } from "../../lib/stats/media-stats-repository";
import { SnapshotJob } from "../../lib/stats/snapshot-job";
import { SnapshotRepository } from "../../lib/stats/snapshot-repository";
import { UserStatsRepository } from "../../lib/stats/user-stats-repository";
import { MIGRATIONS } from "../../migrations";
import { startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";

jest.setTimeout(120_000);

const quiet = { info: () => undefined, warn: () => undefined };
const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** The day the snapshot describes ("yesterday"), and the moment the job runs. */
const D = Date.UTC(2026, 10, 30);
const NOW = D + DAY + 10 * 60_000;
const replication = { maxLagSeconds: 30, rejoinLagSeconds: 15, probeIntervalMs: 200, readYourWritesWaitMs: 200, readYourWritesWindowMs: 30_000 };

let services: TestServices;
let counter = 0;
const opened: Database<unknown>[] = [];

async function open<DB>(name: DatabaseName, settings: DatabaseSettings): Promise<Database<DB>> {
  const db = createDatabase<DB>(name, settings, replication, new MemoryExpiringStore(), quiet);
  opened.push(db as Database<unknown>);
  await db.connect();
  await db.migrate(MIGRATIONS[name]);
  return db;
}

interface Databases {
  membership: Database<MembershipDatabase>;
  media: Database<MediaDatabase>;
  site: Database<SiteDatabase>;
}

async function sqliteDatabases(): Promise<Databases> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-stats-"));
  const at = (name: string): DatabaseSettings => ({ kind: "sqlite", file: path.join(dir, `${name}.sqlite`) });
  return { membership: await open("membership", at("membership")), media: await open("media", at("media")), site: await open("site", at("site")) };
}

async function mariaDbDatabases(): Promise<Databases> {
  const mariadb = services.mariadb!;
  const at = (name: string): DatabaseSettings => ({ kind: "mysql", database: `shoal_stats_${name}_${++counter}`, primaryUrl: mariadb.primaryUrl, replicaUrls: [], poolSize: 4 });
  return { membership: await open("membership", at("membership")), media: await open("media", at("media")), site: await open("site", at("site")) };
}

const OWNER_A = "01JDAAAAAAAAAAAAAAAAAAAAAA";
const OWNER_B = "01JDBBBBBBBBBBBBBBBBBBBBBB";

/** Members: 5 from before, 3 new on day D, 1 after it; sessions used 2 hours, 3 days and 20 days before the day's end. */
async function seedMembers(db: Database<MembershipDatabase>): Promise<void> {
  const made = [...Array(5).fill(D - 10 * DAY), D + HOUR, D + 5 * HOUR, D + 23 * HOUR, D + DAY + 5 * 60_000] as number[];
  const ids = made.map((_, i) => (i === 0 ? OWNER_A : i === 1 ? OWNER_B : `01JDUSER${String(i).padStart(18, "0")}`));
  await db.write(async (trx) => {
    for (const [i, createdAt] of made.entries()) {
      await trx
        .insertInto("users")
        .values({ id: ids[i]!, username: `user${i}`, username_key: `user${i}`, email: `u${i}@example.test`, email_key: `u${i}@example.test`, password_hash: null, role: "user", quota_bytes: 10_000, used_bytes: 0, created_at: createdAt, updated_at: createdAt })
        .execute();
    }
    const seen = [D + DAY - 2 * HOUR, D + DAY - 3 * DAY, D + DAY - 20 * DAY];
    for (const [i, lastSeen] of seen.entries()) {
      await trx.insertInto("sessions").values({ id: `s${i}`, user_id: ids[i]!, created_at: D - 40 * DAY, last_seen_at: lastSeen, expires_at: NOW + DAY, ip: null, user_agent: null }).execute();
    }
  });
}

/** On day D: 5 images by A (3 ready after 2, 4 and 10 s; 2 failed `corrupt`) and 1 audio still waiting; B's video from before. */
async function seedMedia(db: Database<MediaDatabase>): Promise<void> {
  const base = { title: null, description: null, visibility: "public" as const, original_key: "k", mime: "image/jpeg", width: null, height: null, duration_seconds: null, placeholder: null, declared_mime: null, original_name: null, attempts: 1, progress_stage: null, progress_percent: null };
  const rows = [
    { id: "img1-aaaaaaaaaaaaaaaa", at: D + 2 * HOUR, took: 2, status: "ready", reason: null },
    { id: "img2-aaaaaaaaaaaaaaaa", at: D + 3 * HOUR, took: 4, status: "ready", reason: null },
    { id: "img3-aaaaaaaaaaaaaaaa", at: D + 4 * HOUR, took: 10, status: "ready", reason: null },
    { id: "img4-aaaaaaaaaaaaaaaa", at: D + 5 * HOUR, took: 1, status: "failed", reason: "corrupt" },
    { id: "img5-aaaaaaaaaaaaaaaa", at: D + 6 * HOUR, took: 1, status: "failed", reason: "corrupt" },
  ] as const;
  await db.write(async (trx) => {
    for (const row of rows) {
      await trx
        .insertInto("media")
        .values({ ...base, id: row.id, owner_id: OWNER_A, kind: "image", status: row.status, reason: row.reason, bytes: 100, sha256: row.id.padEnd(64, "0"), created_at: row.at, updated_at: row.at, processing_started_at: row.at + 1000, finished_at: row.at + 1000 + row.took * 1000 })
        .execute();
    }
    await trx.insertInto("media").values({ ...base, id: "aud1-aaaaaaaaaaaaaaaa", owner_id: OWNER_A, kind: "audio", mime: "audio/mpeg", status: "uploaded", reason: null, bytes: 50, sha256: "a".repeat(64), created_at: D + 20 * HOUR, updated_at: D + 20 * HOUR }).execute();
    await trx.insertInto("media").values({ ...base, id: "vid1-bbbbbbbbbbbbbbbb", owner_id: OWNER_B, kind: "video", mime: "video/mp4", status: "ready", reason: null, bytes: 1000, sha256: "b".repeat(64), created_at: D - 2 * DAY, updated_at: D - 2 * DAY, processing_started_at: D - 2 * DAY, finished_at: D - 2 * DAY + 60_000 }).execute();
  });
  const repository = new MediaStatsRepository(db);
  await repository.applyViews(
    {
      id: "batch-1",
      deltas: [
        { mediaId: "img1-aaaaaaaaaaaaaaaa", hour: D + 2 * HOUR, views: 5, uniqueViewers: 3 },
        { mediaId: "img2-aaaaaaaaaaaaaaaa", hour: D + 3 * HOUR, views: 2, uniqueViewers: 2 },
        { mediaId: "img1-aaaaaaaaaaaaaaaa", hour: D - DAY, views: 7, uniqueViewers: 7 },
      ],
    },
    NOW,
  );
}

function jobFor(dbs: Databases, hourlyDays = 90): SnapshotJob {
  const users = new UserStatsRepository(dbs.membership);
  const media = new MediaStatsRepository(dbs.media);
  return new SnapshotJob({
    sources: {
      users: (from, to) => users.window(from, to),
      media: (from, to) => media.window(from, to),
      usernames: async (ids) => new Map(ids.map((id) => [id, id === OWNER_A ? "alice" : id === OWNER_B ? "bob" : "?"])),
      live: async () => ({ cacheHitRatio: 0.75, replicaLagMaxSeconds: 1.5 }),
    },
    repository: new SnapshotRepository(dbs.site),
    retention: { hourlyDays, dailyDays: 0 },
    now: () => NOW,
  });
}

async function storedRows(site: Database<SiteDatabase>) {
  const metrics = await site.read((db) => db.selectFrom("metric_snapshots").select(["period", "period_start", "name", "labels", "value"]).orderBy("period").orderBy("period_start").orderBy("name").orderBy("labels").execute());
  const rankings = await site.read((db) => db.selectFrom("snapshot_rankings").selectAll().orderBy("period").orderBy("period_start").orderBy("list").orderBy("position").execute());
  const number = <T extends { value: number; period_start: number }>(row: T) => ({ ...row, value: Number(row.value), period_start: Number(row.period_start) });
  return { metrics: metrics.map(number), rankings: rankings.map((row) => ({ ...number(row), second_value: Number(row.second_value), position: Number(row.position) })) };
}

function valuesOf(rows: Awaited<ReturnType<typeof storedRows>>["metrics"], period: string, start: number): Record<string, number> {
  return Object.fromEntries(rows.filter((r) => r.period === period && r.period_start === start).map((r) => [r.labels ? `${r.name}:${r.labels}` : r.name, r.value]));
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 0 } });
}, 120_000);

afterAll(async () => {
  await Promise.all(opened.map((db) => db.close().catch(() => undefined)));
  await services?.stop();
});

describe.each([
  ["SQLite", sqliteDatabases],
  ["MariaDB", () => mariaDbDatabases()],
])("snapshots on %s", (_engine, databases) => {
  test("a day and an hour with known rows give exact numbers; taking them again changes nothing", async () => {
    const dbs = await databases();
    await seedMembers(dbs.membership);
    await seedMedia(dbs.media);
    const job = jobFor(dbs);

    await job.take("day", D);
    await job.take("hour", D + 2 * HOUR, true);
    const first = await storedRows(dbs.site);
    expect(valuesOf(first.metrics, "day", D)).toEqual({
      users_total: 8,
      users_new: 3,
      users_active_daily: 1,
      users_active_weekly: 2,
      users_active_monthly: 3,
      uploads_image: 5,
      uploads_video: 0,
      uploads_audio: 1,
      bytes_image: 500,
      bytes_video: 1000,
      bytes_audio: 50,
      views: 7,
      unique_viewers: 5,
      processing_p50_image: 4,
      processing_p95_image: 10,
      failures: 2,
      "failures_by_reason:corrupt": 2,
      queue_depth: 1,
    });
    expect(valuesOf(first.metrics, "hour", D + 2 * HOUR)).toMatchObject({ views: 5, unique_viewers: 3, uploads_image: 1, cache_hit_ratio: 0.75, replica_lag_max_seconds: 1.5 });
    expect(first.rankings.filter((r) => r.period === "day").map((r) => [r.list, r.position, r.subject_id, r.owner_label, r.value, r.second_value])).toEqual([
      ["items", 1, "img1-aaaaaaaaaaaaaaaa", "alice", 5, 3],
      ["items", 2, "img2-aaaaaaaaaaaaaaaa", "alice", 2, 2],
      ["uploaders", 1, OWNER_B, "bob", 1000, 1],
      ["uploaders", 2, OWNER_A, "alice", 550, 6],
    ]);

    await job.take("day", D);
    await job.take("hour", D + 2 * HOUR, true);
    expect(await storedRows(dbs.site)).toEqual(first);

    // The analysts' views read the same rows.
    const viaView = await dbs.site.read((db) => sql<{ value: number }>`select value from stats_daily where metric = 'users_new'`.execute(db));
    expect(viaView.rows.map((row) => Number(row.value))).toEqual([3]);
    const topItems = await dbs.site.read((db) => sql<{ media_id: string }>`select media_id from stats_top_items where period = 'day' order by position`.execute(db));
    expect(topItems.rows.map((row) => row.media_id)).toEqual(["img1-aaaaaaaaaaaaaaaa", "img2-aaaaaaaaaaaaaaaa"]);
  });

  test("a batch of views applied twice counts once", async () => {
    const dbs = await databases();
    await seedMedia(dbs.media);
    const repository = new MediaStatsRepository(dbs.media);
    const again = await repository.applyViews({ id: "batch-1", deltas: [{ mediaId: "img1-aaaaaaaaaaaaaaaa", hour: D + 2 * HOUR, views: 5, uniqueViewers: 3 }] }, NOW);
    expect(again.applied).toBe(false);
    const window = await repository.window(D, D + DAY);
    expect({ views: window.views, unique: window.uniqueViewers }).toEqual({ views: 7, unique: 5 });
    const row = await dbs.media.read((db) => db.selectFrom("media").select(["views", "unique_viewers"]).where("id", "=", "img1-aaaaaaaaaaaaaaaa").executeTakeFirstOrThrow());
    expect([Number(row.views), Number(row.unique_viewers)]).toEqual([12, 10]);
  });

  test("while another taker holds the lease, a period is not taken; backfill fills days and recent hours, retention drops old hours", async () => {
    const dbs = await databases();
    await seedMembers(dbs.membership);
    await seedMedia(dbs.media);
    const lock = new MemoryLeaseLock();
    const job = jobFor(dbs, 2);
    // As the site service runs it: a periodic task under the snapshots' lease.
    const task = new PeriodicTask({ name: "stats-snapshots", schedule: cronSchedule("5 * * * *", "UTC"), lock, run: () => job.runDue(), log: { warn: () => undefined } });
    const release = await lock.tryAcquire(60_000);
    expect(await task.runNow("demand")).toMatchObject({ outcome: "skipped" });
    expect((await storedRows(dbs.site)).metrics).toEqual([]);
    await release!();
    await task.stop();

    expect(await job.backfill(D - 3 * DAY)).toBe(4 + 48);
    const rows = await storedRows(dbs.site);
    const days = [...new Set(rows.metrics.filter((r) => r.period === "day").map((r) => r.period_start))];
    expect(days).toEqual([D - 3 * DAY, D - 2 * DAY, D - DAY, D]);
    expect(valuesOf(rows.metrics, "day", D - 2 * DAY)).toMatchObject({ users_total: 5, uploads_video: 1, bytes_video: 1000 });
    const hours = rows.metrics.filter((r) => r.period === "hour").map((r) => r.period_start);
    // Hours older than the 2 days kept are gone.
    expect(Math.min(...hours)).toBeGreaterThanOrEqual(NOW - 2 * DAY);
    expect(Math.min(...hours)).toBeLessThan(NOW - 2 * DAY + HOUR);
    expect(valuesOf(rows.metrics, "day", D).users_new).toBe(3);
  });
});

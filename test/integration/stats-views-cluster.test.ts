/**
 * View counting in cluster mode, on real Redis and MariaDB: deduplication in Redis, a flush that stops
 * half-way (its batch is applied once, later, by any node), and a node process stopped with SIGTERM
 * in the middle of counting: every view it answered is in the database afterwards. And the popular feed's
 * query on MariaDB.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { Redis } from "ioredis";
import { nanoid } from "nanoid";
import type { Database } from "../../lib/db/database";
import { createDatabase } from "../../lib/db/open-database";
import type { MediaDatabase } from "../../lib/db/schemas/media";
import { MemoryExpiringStore } from "../../lib/expiring-store";
import type { MediaJson } from "../../lib/media/media-view";
import { MediaRepository } from "../../lib/media/media-repository";
import { MediaStatsRepository } from "../../lib/stats/media-stats-repository";
import { RedisViewStore } from "../../lib/stats/redis-view-store";
import type { ViewBatch } from "../../lib/stats/view-store";
import { MIGRATIONS } from "../../migrations";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { HttpClient, signUpMember } from "../support/http-client";
import { LISTENING, startNodeProcess, stopAllNodeProcesses } from "../support/node-process";
import { startNode, stopAllNodes } from "../support/nodes";
import { sha256 } from "../support/uploads";

jest.setTimeout(180_000);

let services: TestServices;
let redis: Redis;
let media: Database<MediaDatabase>;

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 0 }, redis: true, nats: true, s3: true });
  redis = new Redis(services.redis!.url);
  media = createDatabase<MediaDatabase>(
    "media",
    { kind: "mysql", database: "shoal_views_store", primaryUrl: services.mariadb!.primaryUrl, replicaUrls: [], poolSize: 2 },
    { maxLagSeconds: 30, rejoinLagSeconds: 15, probeIntervalMs: 200, readYourWritesWaitMs: 200, readYourWritesWindowMs: 30_000 },
    new MemoryExpiringStore(),
    { info: () => undefined, warn: () => undefined },
  );
  await media.connect();
  await media.migrate(MIGRATIONS.media);
}, 120_000);

afterAll(async () => {
  await stopAllNodeProcesses();
  await stopAllNodes();
  redis?.disconnect();
  await media?.close();
  await services?.stop();
});

const HOUR = 3600_000;

test("Redis counts a viewer once per item per 30 minutes, and a flush that stops half-way is applied once by the next", async () => {
  const store = new RedisViewStore(redis);
  const repository = new MediaStatsRepository(media);
  const at = Date.UTC(2026, 11, 1, 10, 15);
  expect(await store.record("item-aaaaaaaaaaaaaaaa", "viewer-1", at)).toBe(true);
  expect(await store.record("item-aaaaaaaaaaaaaaaa", "viewer-1", at + 60_000)).toBe(false);
  expect(await store.record("item-aaaaaaaaaaaaaaaa", "viewer-2", at)).toBe(true);
  expect(await store.record("item-bbbbbbbbbbbbbbbb", "viewer-1", at)).toBe(true);

  // The node applies the batch and stops before deleting it from Redis.
  const applied: ViewBatch[] = [];
  await expect(
    store.flush(async (batch) => {
      applied.push(batch);
      await repository.applyViews(batch, Date.now());
      throw new Error("stopped before the delete");
    }),
  ).rejects.toThrow("stopped before the delete");
  // Counted meanwhile: goes with the next flush too.
  expect(await store.record("item-aaaaaaaaaaaaaaaa", "viewer-3", at)).toBe(true);

  const outcomes: boolean[] = [];
  await store.flush(async (batch) => {
    applied.push(batch);
    outcomes.push((await repository.applyViews(batch, Date.now())).applied);
  });
  // The leftover batch again under its own id (not counted twice), then the new one.
  expect(applied[1]?.id).toBe(applied[0]?.id);
  expect(outcomes).toEqual([false, true]);
  expect(await redis.keys("shoal:views:flushing:*")).toEqual([]);
  const window = await repository.window(at - (at % HOUR), at - (at % HOUR) + HOUR);
  expect({ views: window.views, uniqueViewers: window.uniqueViewers }).toEqual({ views: 4, uniqueViewers: 4 });
  expect(await store.flush(async () => undefined)).toBe(0);
});

test("an item seen by 5,000 different viewers in a day shows about 5,000 unique viewers, not fewer and fewer as the count grows", async () => {
  const store = new RedisViewStore(redis);
  const repository = new MediaStatsRepository(media);
  const at = Date.UTC(2026, 11, 2, 9, 0);
  const viewers = 5_000;
  for (let start = 0; start < viewers; start += 250) {
    await Promise.all(Array.from({ length: 250 }, (_, i) => store.record("item-cccccccccccccccc", `viewer-${start + i}`, at + i)));
  }
  await store.flush(async (batch) => {
    await repository.applyViews(batch, Date.now());
  });
  const window = await repository.window(at - (at % HOUR), at - (at % HOUR) + HOUR);
  // HyperLogLog's standard error is 0.81 %; three of them either way.
  expect({ views: window.views, uniqueWithinEstimate: Math.abs(window.uniqueViewers - viewers) <= viewers * 0.025 }).toEqual({ views: viewers, uniqueWithinEstimate: true });
});

test("a node stopped with SIGTERM while views are counted: every view it answered reaches the database", async () => {
  const env = {
    ...envFor(services),
    SHOAL_PUBLIC_URL: "http://shoal.test",
    RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000",
    RATE_REGISTRATIONS_PER_IP_PER_HOUR: "10000",
    STATS_VIEW_FLUSH_SECONDS: "1",
    STATS_SNAPSHOTS: "false",
  };
  const steady = await startNode({ ...env, SERVICES: "api,users,media,site" });
  const owner = await signUpMember(steady.baseUrl, "http://shoal.test", { prefix: "counted" });
  const id = nanoid();
  const content = randomBytes(64);
  const meta = { meta: { user: { id: owner.id, role: "user", username: owner.username } } };
  await steady.runtime.storage.put(`media/${id}/original.jpg`, Readable.from([content]), "image/jpeg");
  await steady.broker.call("media.create", { id, ownerId: owner.id, kind: "image", mime: "image/jpeg", bytes: 64, sha256: sha256(content), originalKey: `media/${id}/original.jpg` }, meta);
  await steady.broker.call("media.claimProcessing", { id });
  await steady.broker.call("media.completeProcessing", { id, width: 1, height: 1 });
  await steady.broker.call("media.update", { id, visibility: "public" }, meta);

  const stopping = await startNodeProcess({ ...env, NODE_ID: "counting-node", SERVICES: "api,media" });
  await stopping.waitForOutput(LISTENING, 60_000);
  const url = `http://127.0.0.1:${LISTENING.exec(stopping.output())?.[1]}/api/media/${id}`;

  let answered = 0;
  let sent = 0;
  const viewers = Array.from({ length: 4 }, async (_, lane) => {
    for (let i = 0; ; i++) {
      sent++;
      if (lane === 0 && i === 40) process.kill(stopping.pid, "SIGTERM");
      try {
        const response = await fetch(url, { headers: { "User-Agent": `viewer ${lane}-${i}` } });
        await response.arrayBuffer();
        if (response.status === 200) answered++;
        else if (response.status >= 500) break;
      } catch {
        break; // the node has gone
      }
    }
  });
  await Promise.all(viewers);
  expect(await stopping.exited).toEqual({ code: 0, signal: null });
  expect(answered).toBeGreaterThan(40);

  await steady.broker.call("media.flushViews");
  const ownerClient = new HttpClient(steady.baseUrl, { origin: null });
  const seen = await ownerClient.get<{ media: MediaJson }>(`/api/media/${id}`, { bearer: owner.token });
  expect({ views: seen.body.media.views, sent: sent >= answered }).toEqual({ views: answered, sent: true });
  // Every answer had its own viewer; Redis counts them with HyperLogLog, an estimate.
  const off = Math.abs(answered - (seen.body.media.uniqueViewers ?? 0));
  expect({ off, withinEstimate: off <= Math.max(2, Math.ceil(answered * 0.03)) }).toEqual({ off, withinEstimate: true });
});

test("the popular feed on MariaDB: public ready items by flushed views, ties by id, page after page", async () => {
  const repository = new MediaRepository(media);
  const owner = "01JD3Z5W7Q9XK4B1N8M6P2R0ST";
  const items: { id: string; views: number; visibility: "public" | "private"; status: "ready" | "processing" }[] = [
    { id: "popular-top-aaaaaaaaa", views: 7, visibility: "public", status: "ready" },
    { id: "popular-tie-aaaaaaaaa", views: 3, visibility: "public", status: "ready" },
    { id: "popular-tie-bbbbbbbbb", views: 3, visibility: "public", status: "ready" },
    { id: "popular-none-aaaaaaaa", views: 0, visibility: "public", status: "ready" },
    { id: "popular-private-aaaaa", views: 9, visibility: "private", status: "ready" },
    { id: "popular-waiting-aaaaa", views: 8, visibility: "public", status: "processing" },
  ];
  for (const [index, item] of items.entries()) {
    await repository.insert({
      id: item.id, owner_id: owner, kind: "image", title: null, description: null, visibility: item.visibility, status: item.status, reason: null,
      original_key: `media/${item.id}/original.jpg`, bytes: 10, mime: "image/jpeg", sha256: String(index).padStart(64, "0"), width: null, height: null,
      duration_seconds: null, placeholder: null, declared_mime: null, original_name: null, attempts: 0, progress_stage: null, progress_percent: null,
      created_at: 1000 + index, updated_at: 1000 + index,
    });
    await media.write((trx) => trx.updateTable("media").set({ views: item.views }).where("id", "=", item.id).execute());
  }
  const first = await repository.listPublicPopular(undefined, 2);
  expect(first.map((row) => row.id)).toEqual(["popular-top-aaaaaaaaa", "popular-tie-bbbbbbbbb"]);
  const last = first[1]!;
  const rest = await repository.listPublicPopular({ views: Number(last.views), id: last.id }, 10);
  expect(rest.map((row) => row.id)).toEqual(["popular-tie-aaaaaaaaa", "popular-none-aaaaaaaa"]);
});

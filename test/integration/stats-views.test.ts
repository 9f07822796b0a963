/**
 * View counting and the statistics API on a real embedded node: who counts, deduplication, 304s and
 * cached answers counted, counts only for the owner, the flush at stop, and the admin routes
 * (JSON and CSV holding the same numbers).
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { nanoid } from "nanoid";
import type { MediaJson } from "../../lib/media/media-view";
import { listCacheKey } from "../../lib/media/media-cache";
import { viewStoreOf } from "../../lib/stats/view-stores";
import { HttpClient, signUpMember } from "../support/http-client";
import type { SignedUpMember } from "../support/http-client";
import { startNode, stopAllNodes, stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { sha256 } from "../support/uploads";

jest.setTimeout(120_000);

const PUBLIC_URL = "http://shoal.test";
const HOUR = 3600_000;

function envFor(dataDir: string): Record<string, string> {
  return {
    SHOAL_PUBLIC_URL: PUBLIC_URL,
    SHOAL_DATA_DIR: dataDir,
    SERVICES: "api,users,media,site",
    RATE_REGISTRATIONS_PER_IP_PER_HOUR: "10000",
    RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000",
    // Flushed by the test (and at stop), not by the timer.
    STATS_VIEW_FLUSH_SECONDS: "3600",
    STATS_SNAPSHOTS: "false",
  };
}

async function readyPublicItem(node: RunningNode, owner: SignedUpMember): Promise<string> {
  const id = nanoid();
  const content = randomBytes(64);
  const originalKey = `media/${id}/original.jpg`;
  const meta = { meta: { user: { id: owner.id, role: "user", username: owner.username } } };
  await node.runtime.storage.put(originalKey, Readable.from([content]), "image/jpeg");
  await node.broker.call("media.create", { id, ownerId: owner.id, kind: "image", mime: "image/jpeg", bytes: content.length, sha256: sha256(content), originalKey }, meta);
  await node.broker.call("media.claimProcessing", { id });
  await node.broker.call("media.completeProcessing", { id, width: 32, height: 32 });
  await node.broker.call("media.update", { id, visibility: "public" }, meta);
  return id;
}

const anonymous = (node: RunningNode, userAgent: string) => ({
  client: new HttpClient(node.baseUrl, { origin: null }),
  headers: { "User-Agent": userAgent },
});

describe("views and statistics on an embedded node", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-stats-"));
  let node: RunningNode;
  let owner: SignedUpMember;
  let viewer: SignedUpMember;
  let itemId: string;

  beforeAll(async () => {
    node = await startNode(envFor(dataDir));
    owner = await signUpMember(node.baseUrl, PUBLIC_URL, { prefix: "owner" });
    viewer = await signUpMember(node.baseUrl, PUBLIC_URL, { prefix: "viewer" });
    itemId = await readyPublicItem(node, owner);
  });

  afterAll(async () => {
    await stopAllNodes();
  });

  const ownerView = async () => (await owner.client.get<{ media: MediaJson }>(`/api/media/${itemId}`, { bearer: owner.token })).body.media;

  test("a view is someone else's read, once per viewer per 30 minutes, 304s included; only the owner sees the counts", async () => {
    for (let i = 0; i < 3; i++) expect((await viewer.client.get(`/api/media/${itemId}`, { bearer: viewer.token })).status).toBe(200);
    const first = anonymous(node, "Browser A");
    const seen = await first.client.get<{ media: MediaJson }>(`/api/media/${itemId}`, { headers: first.headers });
    expect(seen.status).toBe(200);
    const etag = seen.headers.get("etag") ?? "";
    // Another visitor whose browser already holds the same answer: a 304, and still a view.
    const second = anonymous(node, "Browser B");
    const revalidated = await second.client.get(`/api/media/${itemId}`, { headers: { ...second.headers, "If-None-Match": etag } });
    expect(revalidated.status).toBe(304);
    // The owner's own reads never count.
    await ownerView();
    await ownerView();

    await node.broker.call("media.flushViews");
    const mine = await ownerView();
    expect({ views: mine.views, uniqueViewers: mine.uniqueViewers }).toEqual({ views: 3, uniqueViewers: 3 });

    const theirs = (await viewer.client.get<{ media: MediaJson }>(`/api/media/${itemId}`, { bearer: viewer.token })).body.media;
    expect(theirs).not.toHaveProperty("views");
    expect(theirs).not.toHaveProperty("uniqueViewers");
    const feed = await first.client.get<{ items: MediaJson[] }>("/api/media", { headers: first.headers });
    expect(feed.body.items.find((item) => item.id === itemId)).not.toHaveProperty("views");
    const ownList = await owner.client.get<{ items: MediaJson[] }>("/api/media?scope=mine", { bearer: owner.token });
    expect(ownList.body.items.find((item) => item.id === itemId)?.views).toBe(3);
  });

  test("GET /api/me/stats: storage against quota, uploads per day over 30 days, views per item", async () => {
    const answer = await owner.client.get<{ usedBytes: number; quotaBytes: number; uploads: { t: string; value: number }[]; items: { mediaId: string; views: number }[] }>(
      "/api/me/stats",
      { bearer: owner.token },
    );
    expect(answer.status).toBe(200);
    expect(answer.body.quotaBytes).toBe(node.settings.userQuotaBytes);
    expect(answer.body.uploads).toHaveLength(30);
    expect(answer.body.uploads.at(-1)?.value).toBe(1);
    expect(answer.body.items).toEqual([{ mediaId: itemId, title: null, views: 3, uniqueViewers: 3 }]);
    expect((await new HttpClient(node.baseUrl, { origin: null }).get("/api/me/stats")).status).toBe(401);
  });

  test("the admin routes: members are refused, bad input is named, the CSV holds the API's numbers", async () => {
    // Views counted in the hour before this one, then that hour's snapshot.
    const lastHour = Date.now() - HOUR;
    for (const viewerKey of ["k1", "k2", "k3"]) await viewStoreOf(node.runtime).record(itemId, viewerKey, lastHour);
    await node.broker.call("media.flushViews");
    await node.broker.call("site.takeSnapshots");

    const admin = await signUpMember(node.baseUrl, PUBLIC_URL, { prefix: "admin" });
    await node.broker.call("users.setRole", { id: admin.id, role: "admin" });
    const login = await new HttpClient(node.baseUrl, { origin: null }).post<{ token: string }>("/api/auth/login", { login: admin.username, password: admin.password });
    const bearer = login.body.token;
    const client = new HttpClient(node.baseUrl, { origin: null });

    expect((await viewer.client.get("/api/admin/stats/summary?range=24h", { bearer: viewer.token })).status).toBe(403);
    expect((await client.get("/api/admin/stats?metric=views&from=x&to=y")).status).toBe(401);
    const badMetric = await client.get("/api/admin/stats?metric=nope&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", { bearer });
    expect(badMetric.status).toBe(422);
    const backwards = await client.get("/api/admin/stats?metric=views&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", { bearer });
    expect(backwards.status).toBe(422);

    const from = new Date(Date.now() - 6 * HOUR).toISOString();
    const to = new Date().toISOString();
    const query = `/api/admin/stats?metric=views&from=${from}&to=${to}&bucket=1h`;
    const series = await client.get<{ metric: string; description: string; bucket: string; points: { t: string; value: number }[] }>(query, { bearer });
    expect(series.status).toBe(200);
    expect(series.body.description).toBe("Times someone opened another member's item, per hour.");
    const hourStart = new Date(lastHour - (lastHour % HOUR)).toISOString();
    expect(series.body.points.find((point) => point.t === hourStart)?.value).toBe(3);
    const csv = await client.get(`${query}&format=csv`, { bearer });
    expect(csv.headers.get("content-type")).toMatch(/^text\/csv/);
    const rows = csv.text.trim().split("\r\n");
    expect(rows[0]).toBe("t,views");
    expect(rows.slice(1)).toEqual(series.body.points.map((point) => `${point.t},${point.value}`));

    const summary = await client.get<{ kpis: { metric: string; value: number | null }[]; topItems: { mediaId: string; views: number; uniqueViewers: number }[] }>(
      "/api/admin/stats/summary?range=24h",
      { bearer },
    );
    expect(summary.status).toBe(200);
    // The summary is kept a minute for every admin; a member is refused all the same.
    expect((await viewer.client.get("/api/admin/stats/summary?range=24h", { bearer: viewer.token })).status).toBe(403);
    expect(summary.body.kpis.find((kpi) => kpi.metric === "views")?.value).toBe(3);
    expect(summary.body.topItems).toEqual([{ mediaId: itemId, title: null, ownerName: owner.username, views: 3, uniqueViewers: 3 }]);
    const summaryCsv = await client.get("/api/admin/stats/summary?range=24h&format=csv", { bearer });
    const kpiRows = summaryCsv.text.split("\r\n").filter((line) => line.startsWith("kpi,"));
    expect(kpiRows).toEqual(summary.body.kpis.map((kpi) => `kpi,${kpi.metric},${(kpi as unknown as { label: string }).label},${kpi.value ?? ""},${(kpi as unknown as { previous: number | null }).previous ?? ""},${(kpi as unknown as { change: number | null }).change ?? ""}`));
    expect(summaryCsv.text).toContain(`top_item,${itemId},,${owner.username},3,3`);

    // `npm run report`: the same CSV in a file; PDF without Chromium says so and writes nothing.
    const out = path.join(dataDir, "report.csv");
    // Asynchronously: the node answering the script runs in this process.
    const report = (format: string, env: Record<string, string> = {}, token = bearer) =>
      new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const args = ["tsx", "scripts/report.ts", "--range", "24h", "--format", format, "--out", out, "--url", node.baseUrl, "--token", token];
        const child = execFile("npx", args, { encoding: "utf8", env: { ...process.env, ...env } }, (_error, _stdout, stderr) => resolve({ status: child.exitCode, stderr }));
      });
    const csvRun = await report("csv");
    expect(csvRun.status).toBe(0);
    // The same numbers; only the range's "now" moved on.
    const withoutRange = (text: string) => text.split("\r\n").filter((line) => !line.startsWith("range,")).join("\r\n");
    expect(withoutRange(fs.readFileSync(out, "utf8"))).toBe(withoutRange(summaryCsv.text));
    fs.rmSync(out);
    const pdfRun = await report("pdf", { CHROMIUM_PATH: "/nonexistent/chromium" });
    expect(pdfRun.status).toBe(2);
    expect(pdfRun.stderr).toContain("PDF needs Chromium, which is not installed at /nonexistent/chromium");
    expect(fs.existsSync(out)).toBe(false);
    // Session tokens are base64url and may start with "-": still the value of --token, not an option.
    const dashRun = await report("csv", {}, `-${bearer.slice(1)}`);
    expect(dashRun).toEqual({ status: 2, stderr: "report: the site refused the token (401): it must belong to an admin's session\n" });
    expect(fs.existsSync(out)).toBe(false);
  });

  test("views counted and not yet flushed are kept when the node stops", async () => {
    const late = anonymous(node, "Browser C");
    expect((await late.client.get(`/api/media/${itemId}`, { headers: late.headers })).status).toBe(200);
    await stopNode(node);
    node = await startNode(envFor(dataDir));
    const again = new HttpClient(node.baseUrl, { origin: null });
    const mine = (await again.get<{ media: MediaJson }>(`/api/media/${itemId}`, { bearer: owner.token })).body.media;
    expect(mine.views).toBe(3 + 3 + 1);
  });
});

describe("the public feed by popularity", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-popular-"));
  let node: RunningNode;
  let owner: SignedUpMember;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    node = await startNode(envFor(dataDir));
    owner = await signUpMember(node.baseUrl, PUBLIC_URL, { prefix: "popular" });
    // Counted views per item: "top" most, "tieA" and "tieB" the same, "quiet" none; "hidden" is made private again.
    const counts: Record<string, number> = { top: 5, tieA: 2, tieB: 2, quiet: 0, hidden: 9 };
    for (const [name, count] of Object.entries(counts)) {
      ids[name] = await readyPublicItem(node, owner);
      for (let i = 0; i < count; i++) await viewStoreOf(node.runtime).record(ids[name] as string, `viewer-${name}-${i}`, Date.now());
    }
    await node.broker.call("media.update", { id: ids.hidden, visibility: "private" }, { meta: { user: { id: owner.id, role: "user", username: owner.username } } });
    await node.broker.call("media.flushViews");
  });

  afterAll(async () => {
    await stopAllNodes();
  });

  test("most viewed first, ties by id, page by page with the feed's own cursors, cached as one shared entry, no counts shown", async () => {
    const client = new HttpClient(node.baseUrl, { origin: null });
    const [firstTie, secondTie] = [ids.tieA as string, ids.tieB as string].sort().reverse();
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `/api/media?scope=public&sort=popular&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const page = await client.get<{ items: MediaJson[]; nextCursor: string | null }>(query);
      expect(page.status).toBe(200);
      for (const item of page.body.items) {
        expect(item).not.toHaveProperty("views");
        seen.push(item.id);
      }
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual([ids.top, firstTie, secondTie, ids.quiet]);
    expect(pages).toBe(2);

    // One entry for everyone, apart from the newest-first feed's.
    const key = listCacheKey("media.list", { scope: "public", sort: "popular", limit: 2 }, undefined);
    expect(await node.broker.cacher?.get(key)).toMatchObject({ items: [{ id: ids.top }, { id: firstTie }] });
    const signedIn = await client.get<{ items: MediaJson[] }>("/api/media?scope=public&sort=popular&limit=2", { bearer: owner.token });
    expect(signedIn.body.items.map((item) => item.id)).toEqual([ids.top, firstTie]);
    const newest = await client.get<{ items: MediaJson[] }>("/api/media?scope=public&limit=4");
    expect(newest.body.items.map((item) => item.id)).toEqual([ids.quiet, ids.tieB, ids.tieA, ids.top]);
  });

  test("bad input is named: an unknown sort, popular outside the public feed, and cursors of the other order", async () => {
    const client = new HttpClient(node.baseUrl, { origin: null });
    const unknown = await client.get<{ error: { code: string; fields: Record<string, string> } }>("/api/media?sort=views");
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.code).toBe("validation_failed");
    expect(Object.keys(unknown.body.error.fields)).toEqual(["sort"]);

    const mine = await client.get<{ error: { fields: Record<string, string> } }>("/api/media?scope=mine&sort=popular", { bearer: owner.token });
    expect(mine.status).toBe(422);
    expect(mine.body.error.fields).toEqual({ sort: "popular needs scope=public" });

    const newestCursor = (await client.get<{ nextCursor: string }>("/api/media?scope=public&limit=1")).body.nextCursor;
    const popularCursor = (await client.get<{ nextCursor: string }>("/api/media?scope=public&sort=popular&limit=1")).body.nextCursor;
    for (const query of [`sort=popular&cursor=${newestCursor}`, `cursor=${popularCursor}`]) {
      const refused = await client.get<{ error: { fields: Record<string, string> } }>(`/api/media?scope=public&${query}`);
      expect(refused.status).toBe(422);
      expect(refused.body.error.fields).toEqual({ cursor: "is not a cursor from this list" });
    }
  });

  test("the OpenAPI document lists sort with its two values", async () => {
    const document = (await new HttpClient(node.baseUrl, { origin: null }).get<{ paths: Record<string, Record<string, { parameters?: { name: string; schema?: { enum?: string[] } }[] }>> }>("/api/openapi.json")).body;
    const sort = document.paths["/api/media"]?.get?.parameters?.find((parameter) => parameter.name === "sort");
    expect(sort?.schema?.enum).toEqual(["newest", "popular"]);
  });
});

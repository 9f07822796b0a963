import os from "node:os";
import path from "node:path";
import SqliteDriver from "better-sqlite3";
import { startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

let node: RunningNode;

async function request(path: string, init?: RequestInit): Promise<{ status: number; body: unknown; text: string }> {
  const response = await fetch(`${node.baseUrl}${path}`, init);
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, body, text };
}

const errorShape = (code: string) => ({ error: { code, message: expect.any(String), fields: expect.any(Object) } });

const METRICS_TOKEN = "a-scraper-token-of-some-length";

beforeAll(async () => {
  node = await startNode({ METRICS_PORT: "0", METRICS_TOKEN, NODE_ID: "embedded-1", RATE_API_REQUESTS_PER_IP_PER_MINUTE: "30" });
});

function metricsListener(path: string, init?: RequestInit): Promise<Response> {
  return fetch(`http://127.0.0.1:${node.metricsPort ?? 0}${path}`, init);
}

afterAll(async () => {
  await stopAllNodes();
});

test("embedded health: one process with SQLite, memory cache, local storage and no transporter", async () => {
  const answer = await metricsListener("/health");
  expect(answer.status).toBe(200);
  expect(await answer.json()).toMatchObject({
    status: "ok",
    checks: {
      cache: { status: "ok", kind: "memory" },
      transporter: { status: "ok", kind: "none" },
      storage: { status: "ok", kind: "local" },
      "database:membership": { status: "ok", engine: "sqlite" },
      "database:media": { status: "ok", engine: "sqlite" },
      "database:site": { status: "ok", engine: "sqlite" },
    },
  });
});

test("anonymous callers of /api/health see the status and each check's name and status, not paths or engines", async () => {
  const { status, body, text } = await request("/api/health");
  expect(status).toBe(200);
  expect(body).toEqual({
    status: "ok",
    checks: Object.fromEntries(
      ["cache", "transporter", "storage", "database:membership", "database:media", "database:site", "backups"].map((name) => [name, { status: "ok" }]),
    ),
  });
  expect(text).not.toContain(node.settings.dataDir);
  expect(text).not.toMatch(/sqlite|memory|local/);
});

test("/api/health/live answers 200 without touching any dependency, and so does /live on the metrics listener", async () => {
  const answer = await request("/api/health/live");
  expect(answer).toMatchObject({ status: 200, body: { status: "live" } });
  const live = await metricsListener("/live");
  expect({ status: live.status, body: await live.json() }).toEqual({ status: 200, body: { status: "live" } });
});

test("/api/health/ready, the load balancer's probe, answers as /api/health does for anonymous callers, past the API rate limit; /ready on the metrics listener with details", async () => {
  const full = await request("/api/health");
  // RATE_API_REQUESTS_PER_IP_PER_MINUTE is 30 here: a probe every 2 s must never be refused.
  for (let index = 0; index < 35; index++) {
    const probe = await request("/api/health/ready");
    expect({ index, status: probe.status, body: probe.body }).toEqual({ index, status: 200, body: full.body });
  }
  const ready = await metricsListener("/ready");
  expect(ready.status).toBe(200);
  expect(await ready.json()).toMatchObject({ status: "ok", checks: { storage: { status: "ok", kind: "local" } } });
});

test("a cached read is cleaned by a write, in the memory cache too", async () => {
  const { user } = await node.broker.call<{ user: { id: string } }, object>("users.create", {
    username: "Ada",
    email: "ada@example.test",
  });
  const first = await request(`/api/users/${user.id}`);
  expect(first.body).toEqual({ user: { id: user.id, username: "Ada", createdAt: expect.any(String) } });
  const sqlite = new SqliteDriver(path.join(node.settings.dataDir, "membership.sqlite"));
  try {
    sqlite.prepare("update users set username = ? where id = ?").run("Ada (renamed)", user.id);
  } finally {
    sqlite.close();
  }
  expect(await request(`/api/users/${user.id}`)).toMatchObject({ body: { user: { username: "Ada" } } });
  const metrics = await (await metricsListener("/metrics")).text();
  expect(metrics).toMatch(/moleculer_cacher_found_total\{[^}]*\} [1-9]/);

  const { user: admin } = await node.broker.call<{ user: { role: string } }, object>("users.setRole", { id: user.id, role: "admin" });
  expect(admin.role).toBe("admin");
  expect(await request(`/api/users/${user.id}`)).toMatchObject({ body: { user: { username: "Ada (renamed)" } } });
});

test.each([
  ["an unknown user", "/api/users/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404, "not_found"],
  ["a malformed id", "/api/users/not-an-id", 422, "validation_failed"],
  ["an unknown parameter", "/api/users/01ARZ3NDEKTSV4RRFFQ69G5FAV?role=admin", 422, "validation_failed"],
  ["SQL in the id", "/api/users/'%20OR%201=1%20--", 422, "validation_failed"],
  ["an unknown route", "/api/nothing-here", 404, "not_found"],
])("%s (%s) answers %i with the documented error shape and no internals", async (_what, path, status, code) => {
  const answer = await request(path);
  expect(answer.status).toBe(status);
  expect(answer.body).toEqual(errorShape(code));
  expect(answer.text).not.toMatch(/select|sqlite|\.ts:|stack/i);
});

test("a write method on a read-only route is refused with the same shape", async () => {
  const answer = await request("/api/health", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  expect(answer.status).toBe(404);
  expect(answer.body).toEqual(errorShape("not_found"));
});

test("validation errors name the field", async () => {
  const answer = await request("/api/users/not-an-id");
  expect(answer.body).toMatchObject({ error: { fields: { id: "is not a user id" } } });
});

describe("metrics", () => {
  test("are scrapeable in Prometheus format on the metrics listener, which is on loopback", async () => {
    const answer = await metricsListener("/metrics");
    expect(answer.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await answer.text()).toMatch(/^# TYPE moleculer_request_total counter$/m);
  });

  test("on the public port are served only with the bearer token; anyone else gets 404", async () => {
    const withoutToken: Record<string, string>[] = [
      {},
      { Authorization: "Bearer wrong-token-of-the-same-size" },
      { Authorization: METRICS_TOKEN },
      { Cookie: `shoal_session=${METRICS_TOKEN}` },
    ];
    for (const headers of withoutToken) {
      const refused = await request("/metrics", { headers });
      expect(refused.status).toBe(404);
      expect(refused.text).not.toMatch(/moleculer_/);
    }
    const scraped = await request("/metrics", { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(scraped.status).toBe(200);
    expect(scraped.text).toMatch(/^# TYPE moleculer_request_total counter$/m);
  });

  test("name neither the host nor its user, addresses or the process's arguments", async () => {
    const text = await (await metricsListener("/metrics")).text();
    expect(text).toMatch(/process_memory_rss/);
    expect(text).not.toMatch(/os_hostname|os_user|os_network|process_arguments|os_cpu_info/);
    expect(text).not.toContain(os.hostname());
    expect(text).not.toContain(os.userInfo().homedir);
    for (const address of Object.values(os.networkInterfaces()).flat()) {
      if (address && !address.internal) expect(text).not.toContain(address.address);
    }
  });

  test("a scraper is never rate-limited, on either port", async () => {
    // The API allows 30 requests a minute per address here.
    const statuses = new Set<number>();
    for (let i = 0; i < 40; i++) {
      statuses.add((await request("/metrics", { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } })).status);
      statuses.add((await metricsListener("/metrics")).status);
    }
    expect([...statuses]).toEqual([200]);
  });
});

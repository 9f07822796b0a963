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

beforeAll(async () => {
  node = await startNode({});
});

afterAll(async () => {
  await stopAllNodes();
});

test("embedded health: one process with SQLite, memory cache, local storage and no transporter", async () => {
  const { status, body } = await request("/api/health");
  expect(status).toBe(200);
  expect(body).toMatchObject({
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
  const metrics = (await request("/metrics")).text;
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

test("metrics are scrapeable in Prometheus format", async () => {
  const answer = await fetch(`${node.baseUrl}/metrics`);
  expect(answer.headers.get("content-type")).toMatch(/^text\/plain/);
  expect(await answer.text()).toMatch(/^# TYPE moleculer_request_total counter$/m);
});

import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { collectReplicaStatus, replCommands } from "../../scripts/repl-commands";
import { formatReplicaTable } from "../../lib/ops/replica-table";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

let services: TestServices;
let nodeA: RunningNode;
let nodeB: RunningNode;

interface HealthBody {
  status: string;
  checks: Record<string, { status: string; replicas?: { lagSeconds: number | null; inRotation: boolean }[]; kind?: string }>;
}

/** The node's operator listener (METRICS_PORT): /metrics and the detailed /health. */
function metricsUrl(node: RunningNode): string {
  return `http://127.0.0.1:${node.metricsPort ?? 0}`;
}

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as T };
}

async function cacherHits(node: RunningNode): Promise<number> {
  const text = await (await fetch(`${metricsUrl(node)}/metrics`)).text();
  const line = text.split("\n").find((row) => row.startsWith("moleculer_cacher_found_total{"));
  return line ? Number(line.split(" ").pop()) : 0;
}

let userCounter = 0;
async function createUser(node: RunningNode): Promise<string> {
  userCounter++;
  const { user } = await node.broker.call<{ user: { id: string } }, object>("users.create", {
    username: `member${userCounter}`,
    email: `member${userCounter}@example.test`,
  });
  // Read next by someone else, through the replica: the account must have reached it.
  await services.mariadb!.waitForReplicaCatchUp(0);
  return user.id;
}

async function renameBehindTheCache(id: string, username: string): Promise<void> {
  const mariadb = services.mariadb!;
  await mariadb.primary.query("update shoal_membership.users set username = ? where id = ?", [username, id]);
  await mariadb.waitForReplicaCatchUp(0);
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  const env = { ...envFor(services), DB_PROBE_INTERVAL_MS: "250", METRICS_PORT: "0" };
  [nodeA, nodeB] = await Promise.all([
    startNode({ ...env, NODE_ID: "node-a", SERVICES: "api,users,site" }),
    startNode({ ...env, NODE_ID: "node-b", SERVICES: "api,users,media" }),
  ]);
  await Promise.all([nodeA.broker.waitForServices(["media"], 20_000), nodeB.broker.waitForServices(["site"], 20_000)]);
}, 120_000);

afterAll(async () => {
  await stopAllNodes();
  await services?.stop();
});

test("two nodes over NATS call each other's services", async () => {
  const fromA = await nodeA.broker.call<{ database: string }, object>("media.replicationStatus", {});
  const fromB = await nodeB.broker.call<{ database: string }, object>("site.replicationStatus", {});
  expect(fromA.database).toBe("media");
  expect(fromB.database).toBe("site");
});

test("the nodes share the Redis cache, and a write through one node cleans what the other cached", async () => {
  const id = await createUser(nodeA);
  const first = await getJson<{ user: { username: string } }>(`${nodeB.baseUrl}/api/users/${id}`);
  expect(first.status).toBe(200);
  const originalName = first.body.user.username;

  await renameBehindTheCache(id, "renamed-behind-cache");
  const hitsBefore = await cacherHits(nodeA);
  const fromA = await getJson<{ user: { username: string } }>(`${nodeA.baseUrl}/api/users/${id}`);
  // Node A never read this user itself: the old name can only come from what node B cached in Redis.
  expect(fromA.body.user.username).toBe(originalName);
  expect(await cacherHits(nodeA)).toBe(hitsBefore + 1);

  await nodeA.broker.call("users.setRole", { id, role: "admin" });
  const afterWrite = await getJson<{ user: { username: string } }>(`${nodeB.baseUrl}/api/users/${id}`);
  expect(afterWrite.body.user.username).toBe("renamed-behind-cache");
});

test("health lists each dependency of the node, with every replica's lag and rotation", async () => {
  const a = await eventually(
    () => getJson<HealthBody>(`${metricsUrl(nodeA)}/health`),
    (answer) => answer.body.checks["database:membership"]?.replicas?.[0]?.inRotation === true,
  );
  expect(a.status).toBe(200);
  expect(a.body.status).toBe("ok");
  expect(Object.keys(a.body.checks).sort()).toEqual(["cache", "database:membership", "database:site", "storage", "transporter", "uploads"]);
  expect(a.body.checks["database:membership"]?.replicas).toEqual([expect.objectContaining({ inRotation: true, lagSeconds: expect.any(Number) })]);
  expect(a.body.checks.cache).toMatchObject({ status: "ok", kind: "redis" });
  expect(a.body.checks.transporter).toMatchObject({ status: "ok", kind: "nats" });
  expect(a.body.checks.storage).toMatchObject({ status: "ok", kind: "s3" });

  const b = await getJson<HealthBody>(`${nodeB.baseUrl}/api/health`);
  expect(Object.keys(b.body.checks)).toContain("database:media");
  expect(Object.keys(b.body.checks)).not.toContain("database:site");

  // Anonymous callers of the public port: names and statuses, no hosts, ports or replicas.
  const anonymous = await fetch(`${nodeA.baseUrl}/api/health`);
  const text = await anonymous.text();
  expect(JSON.parse(text)).toEqual({ status: "ok", checks: Object.fromEntries(Object.keys(a.body.checks).map((name) => [name, { status: "ok" }])) });
  expect(text).not.toMatch(/127\.0\.0\.1|replicas|lagSeconds|redis|nats/);
});

test("the REPL's replicas command shows every node's view of each database", async () => {
  const statuses = await collectReplicaStatus(nodeA.broker);
  expect(statuses.map((status) => `${status.database}@${status.nodeID}`).sort()).toEqual(
    ["media@node-b", "membership@node-a", "membership@node-b", "site@node-a"].sort(),
  );
  const table = formatReplicaTable(statuses);
  expect(table).toMatch(/membership\s+replica\s+127\.0\.0\.1:\d+\s+yes\s+\d+\.\d\s+yes/);
});

test("the REPL's cache-clean command empties matching entries on every node", async () => {
  const id = await createUser(nodeB);
  await getJson(`${nodeA.baseUrl}/api/users/${id}`);
  await renameBehindTheCache(id, "changed-in-database");
  const cacheClean = replCommands.find((command) => command.command.startsWith("cache-clean"))!;
  const log = jest.spyOn(console, "log").mockImplementation(() => undefined);
  try {
    await cacheClean.action(nodeB.broker, { pattern: "users.get:**" });
  } finally {
    log.mockRestore();
  }
  const after = await getJson<{ user: { username: string } }>(`${nodeA.baseUrl}/api/users/${id}`);
  expect(after.body.user.username).toBe("changed-in-database");
});

test("with Redis down, health answers 200 degraded naming the cache (the node still serves), and ok again when Redis is back", async () => {
  await services.redis!.stop();
  try {
    const degraded = await eventually(() => getJson<HealthBody>(`${nodeA.baseUrl}/api/health`), (r) => r.body.status !== "ok");
    expect(degraded.status).toBe(200);
    expect(degraded.body.status).toBe("degraded");
    expect(degraded.body.checks.cache?.status).toBe("degraded");
    expect(degraded.body.checks.transporter?.status).toBe("ok");
  } finally {
    await services.redis!.start();
  }
  await eventually(() => getJson<HealthBody>(`${nodeA.baseUrl}/api/health`), (r) => r.body.status === "ok", 30_000);
});

test("with the primary down, a write answers 503 with a clear message while reads keep working", async () => {
  const id = await createUser(nodeA);
  await services.mariadb!.waitForReplicaCatchUp(0);
  await services.mariadb!.primary.stop();
  try {
    const failure = await nodeB.broker.call("users.setRole", { id, role: "admin" }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 503, type: "unavailable", message: expect.stringMatching(/cannot accept changes/) });
    const read = await getJson<{ user: { id: string } }>(`${nodeB.baseUrl}/api/users/${id}`);
    expect(read.status).toBe(200);
    expect(read.body.user.id).toBe(id);
    const health = await eventually(
      () => getJson<HealthBody>(`${nodeB.baseUrl}/api/health`),
      (r) => r.body.checks["database:membership"]?.status === "degraded",
    );
    expect(health.status).toBe(200);
  } finally {
    await services.mariadb!.primary.start();
  }
});

test("a cache clean that removes a held stampede lock does not fail the read that holds it", async () => {
  const cacher = nodeA.broker.cacher!;
  const unlock = await cacher.lock("users.get:01ARZ3NDEKTSV4RRFFQ69G5FAV", 15_000);
  await cacher.clean("users.get:**");
  await expect(unlock()).resolves.toBeUndefined();
});

test("the Content-Security-Policy lets pages load media from the S3 endpoint that presigned URLs point at", async () => {
  const response = await fetch(`${nodeA.baseUrl}/api/health`);
  const policy = response.headers.get("content-security-policy") ?? "";
  const endpoint = new URL(services.s3!.endpoint).origin;
  const directives = new Map(policy.split(";").map((directive) => [directive.split(" ")[0], directive.split(" ").slice(1)]));
  expect(directives.get("img-src")).toContain(endpoint);
  expect(directives.get("media-src")).toContain(endpoint);
  expect(directives.get("connect-src")).toContain(endpoint);
  expect(directives.get("script-src")).toEqual(["'self'"]);
});

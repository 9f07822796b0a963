/**
 * Accounts across a cluster: two gateway nodes over NATS sharing Redis (rate limits, cache)
 * and a MariaDB primary with one replica. Sign-in lockouts count across nodes, sessions
 * made on one node work at once on the other, and a revoked token is refused everywhere.
 */
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { HttpClient, expectErrorBody } from "../support/http-client";
import type { AccountView, ApiResponse, SignedInBody } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

const PUBLIC_URL = "http://shoal.test";

let services: TestServices;
let nodeA: RunningNode;
let nodeB: RunningNode;
let adminToken: string;

interface AuditItem {
  id: string;
  action: string;
  actorId: string | null;
  subjectId: string | null;
  ip: string | null;
}

let counter = 0;
function credentials(prefix: string): { username: string; email: string; password: string } {
  counter++;
  return { username: `${prefix}_${counter}`, email: `${prefix}.${counter}@example.test`, password: `long enough secret ${counter}` };
}

/** A client at the given (forwarded) address; both nodes trust loopback proxies. */
function from(node: RunningNode, ip: string): HttpClient {
  return new HttpClient(node.baseUrl, { origin: PUBLIC_URL, forwardedFor: ip });
}

async function register(node: RunningNode, ip: string, account: { username: string; email: string; password: string }): Promise<SignedInBody> {
  const answer = await from(node, ip).post<SignedInBody>("/api/auth/register", account);
  expect({ status: answer.status, text: answer.status === 201 ? "" : answer.text }).toEqual({ status: 201, text: "" });
  return answer.body;
}

function login(node: RunningNode, ip: string, loginName: string, password: string): Promise<ApiResponse<SignedInBody>> {
  return from(node, ip).post<SignedInBody>("/api/auth/login", { login: loginName, password });
}

function me(node: RunningNode, token: string): Promise<ApiResponse<{ user: AccountView }>> {
  return new HttpClient(node.baseUrl, { origin: null }).get<{ user: AccountView }>("/api/users/me", { bearer: token });
}

async function auditFor(subjectId: string): Promise<AuditItem[]> {
  const answer = await new HttpClient(nodeB.baseUrl, { origin: null }).get<{ items: AuditItem[] }>("/api/admin/audit?limit=200", { bearer: adminToken });
  expect(answer.status).toBe(200);
  return answer.body.items.filter((item) => item.subjectId === subjectId);
}

function retryAfter(answer: ApiResponse): number {
  expect(answer.headers.get("retry-after")).toMatch(/^\d+$/);
  return Number(answer.headers.get("retry-after"));
}

async function replicaInRotation(node: RunningNode): Promise<void> {
  await eventually(
    () => node.broker.call<{ health: { replicas: { inRotation: boolean }[] } }, object>("users.replicationStatus", {}, { nodeID: node.broker.nodeID }),
    (status) => status.health.replicas[0]?.inRotation === true,
  );
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  const env = { ...envFor(services), DB_PROBE_INTERVAL_MS: "250", TRUSTED_PROXIES: "loopback", SHOAL_PUBLIC_URL: PUBLIC_URL };
  [nodeA, nodeB] = await Promise.all([
    startNode({ ...env, NODE_ID: "accounts-a", SERVICES: "api,users,site" }),
    startNode({ ...env, NODE_ID: "accounts-b", SERVICES: "api,users,media" }),
  ]);
  await Promise.all([nodeA.broker.waitForServices(["media"], 20_000), nodeB.broker.waitForServices(["site"], 20_000)]);
  await Promise.all([replicaInRotation(nodeA), replicaInRotation(nodeB)]);

  const operator = credentials("operator");
  await nodeA.broker.call("users.create", { ...operator, role: "admin" });
  const signedIn = await login(nodeB, "192.0.2.1", operator.username, operator.password);
  expect(signedIn.status).toBe(200);
  adminToken = signedIn.body.token;
}, 120_000);

afterAll(async () => {
  await stopAllNodes();
  await services?.stop();
});

describe("sign-in lockout shared by the nodes", () => {
  test("ten failures alternating between A and B lock the account on both: the 11th, even with the right password and from elsewhere, is 429 too_many_attempts", async () => {
    const account = credentials("target");
    const { user } = await register(nodeA, "198.51.100.10", account);
    const attacker = "203.0.113.50";
    for (let i = 0; i < 10; i++) {
      const answer = await login(i % 2 === 0 ? nodeA : nodeB, attacker, account.username, `guess number ${i}`);
      expectErrorBody(answer, 401, "invalid_credentials", {});
    }
    for (const [node, ip] of [
      [nodeA, attacker],
      [nodeB, attacker],
      [nodeB, "198.51.100.10"],
    ] as const) {
      const locked = await login(node, ip, account.username, account.password);
      expectErrorBody(locked, 429, "too_many_attempts", {});
      expect(retryAfter(locked)).toBeGreaterThan(3000);
      expect(locked.setCookies).toEqual([]);
    }

    const entries = await auditFor(user.id);
    expect(entries.filter((entry) => entry.action === "auth.lockout")).toEqual([expect.objectContaining({ ip: attacker })]);
    const failures = entries.filter((entry) => entry.action === "auth.login_failed");
    expect(failures).toHaveLength(10);
    // Forwarded addresses are believed from the trusted (loopback) proxy, on both nodes.
    expect(new Set(failures.map((entry) => entry.ip))).toEqual(new Set([attacker]));
  });

  test("a successful sign-in from another address does not reset the account's failure count", async () => {
    const account = credentials("patient");
    await register(nodeB, "198.51.100.20", account);
    const attacker = "203.0.113.60";
    for (let i = 0; i < 5; i++) expectErrorBody(await login(i % 2 === 0 ? nodeA : nodeB, attacker, account.email, `try ${i}`), 401, "invalid_credentials");
    expect((await login(nodeB, "198.51.100.20", account.username, account.password)).status).toBe(200);
    for (let i = 5; i < 10; i++) expectErrorBody(await login(i % 2 === 0 ? nodeA : nodeB, attacker, account.email, `try ${i}`), 401, "invalid_credentials");
    expectErrorBody(await login(nodeA, "198.51.100.20", account.username, account.password), 429, "too_many_attempts");
  });
  test("twenty simultaneous wrong guesses split between A and B get no more than ten password checks", async () => {
    const account = credentials("burst");
    await register(nodeA, "198.51.100.21", account);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => login(i % 2 === 0 ? nodeA : nodeB, "203.0.113.70", account.username, `parallel guess ${i}`)),
    );
    for (const answer of answers) expect([401, 429]).toContain(answer.status);
    const checked = answers.filter((answer) => answer.status === 401).length;
    // Each 401 is a password that was checked; a correct limit lets ten through and refuses the rest.
    expect(checked).toBeLessThanOrEqual(10);
  });
});

describe("sessions across nodes", () => {
  test("a session made on A works at once on B, and one made on B at once on A (read-your-writes)", async () => {
    for (let i = 0; i < 5; i++) {
      const [made, other] = i % 2 === 0 ? [nodeA, nodeB] : [nodeB, nodeA];
      const signedUp = await register(made, "198.51.100.30", credentials("roamer"));
      const there = await me(other, signedUp.token);
      expect({ status: there.status, id: there.body?.user?.id }).toEqual({ status: 200, id: signedUp.user.id });
    }
    const account = credentials("cookie");
    const browser = from(nodeA, "198.51.100.31");
    await browser.post("/api/auth/register", account);
    const onB = new HttpClient(nodeB.baseUrl, { origin: PUBLIC_URL });
    for (const [name, value] of browser.cookies) onB.cookies.set(name, value);
    expect((await onB.get("/api/users/me")).status).toBe(200);
  });

  test("with the replica lagging, a session made on A still works at once on B", async () => {
    const mariadb = services.mariadb!;
    await mariadb.stopReplicaSqlThread(0);
    try {
      const signedUp = await register(nodeA, "198.51.100.32", credentials("laggy"));
      const there = await me(nodeB, signedUp.token);
      expect({ status: there.status, id: there.body?.user?.id }).toEqual({ status: 200, id: signedUp.user.id });
    } finally {
      await mariadb.startReplicaSqlThread(0);
    }
    await mariadb.waitForReplicaCatchUp(0);
  });

  test("a token signed out on A is refused by the very next request on B", async () => {
    const account = credentials("leaving");
    await register(nodeB, "198.51.100.40", account);
    const signedIn = await login(nodeA, "198.51.100.40", account.username, account.password);
    expect((await me(nodeB, signedIn.body.token)).status).toBe(200);
    const logout = await new HttpClient(nodeA.baseUrl, { origin: null }).post("/api/auth/logout", undefined, { bearer: signedIn.body.token });
    expect(logout.status).toBe(204);
    expectErrorBody(await me(nodeB, signedIn.body.token), 401, "unauthenticated");
    expectErrorBody(await me(nodeA, signedIn.body.token), 401, "unauthenticated");
  });

  test("a password change on A ends the other sessions on B at once", async () => {
    const account = credentials("rotating");
    const first = await register(nodeA, "198.51.100.41", account);
    const second = await login(nodeB, "198.51.100.41", account.username, account.password);
    expect((await me(nodeB, second.body.token)).status).toBe(200);
    const changed = await new HttpClient(nodeA.baseUrl, { origin: null }).put(
      "/api/users/me/password",
      { currentPassword: account.password, newPassword: "a brand new passphrase" },
      { bearer: first.token },
    );
    expect(changed.status).toBe(204);
    expectErrorBody(await me(nodeB, second.body.token), 401, "unauthenticated");
    expect((await me(nodeB, first.token)).status).toBe(200);
  });

  // A replica is normally milliseconds behind; here it is held back so that the race is certain.
  test("a token signed out on A is refused on B at once even while the replica lags, not only once the cached session expires", async () => {
    const mariadb = services.mariadb!;
    const account = credentials("revoked");
    await register(nodeA, "198.51.100.42", account);
    const signedIn = await login(nodeA, "198.51.100.42", account.username, account.password);
    await mariadb.waitForReplicaCatchUp(0);
    expect((await me(nodeB, signedIn.body.token)).status).toBe(200);

    await mariadb.stopReplicaSqlThread(0);
    let afterLogout: ApiResponse<{ user: AccountView }>;
    try {
      const logout = await new HttpClient(nodeA.baseUrl, { origin: null }).post("/api/auth/logout", undefined, { bearer: signedIn.body.token });
      expect(logout.status).toBe(204);
      afterLogout = await me(nodeB, signedIn.body.token);
    } finally {
      await mariadb.startReplicaSqlThread(0);
    }
    await mariadb.waitForReplicaCatchUp(0);
    const later = await me(nodeB, signedIn.body.token);
    expect({ rightAfterSignOut: afterLogout.status, onceReplicaCaughtUp: later.status }).toEqual({ rightAfterSignOut: 401, onceReplicaCaughtUp: 401 });
  });
});

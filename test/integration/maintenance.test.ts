import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { HttpClient, memberCredentials, signUpMember } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { signIn } from "../support/sockets";

interface ErrorBody {
  error: { code: string; message: string };
}

async function adminOf(node: RunningNode, prefix: string): Promise<{ username: string; password: string; token: string }> {
  const credentials = memberCredentials(prefix);
  await node.broker.call("users.create", { ...credentials, role: "admin" });
  return { ...credentials, token: await signIn(node.baseUrl, credentials.username, credentials.password) };
}

describe("maintenance switch, embedded", () => {
  let node: RunningNode;

  beforeAll(async () => {
    node = await startNode({});
  }, 60_000);

  afterAll(async () => {
    await stopAllNodes();
  });

  it("while on, changes answer 503 with the message and Retry-After; reads, sign-in and switching it off go on", async () => {
    const client = new HttpClient(node.baseUrl, { origin: null });
    const admin = await adminOf(node, "mtadm");
    const member = await signUpMember(node.baseUrl, null, { prefix: "mtm" });

    expect((await client.get("/api/admin/maintenance", { bearer: member.token })).status).toBe(403);
    expect((await client.put("/api/admin/maintenance", { on: true }, { bearer: member.token })).status).toBe(403);
    expect((await client.put("/api/admin/maintenance", { on: "yes" }, { bearer: admin.token })).status).toBe(422);
    expect((await client.put("/api/admin/maintenance", { on: true, retryAfterSeconds: 0 }, { bearer: admin.token })).status).toBe(422);

    const on = await client.put<{ maintenance: { on: boolean; since: string } }>(
      "/api/admin/maintenance",
      { on: true, message: "Restoring last night's backup.", retryAfterSeconds: 120 },
      { bearer: admin.token },
    );
    expect(on.status).toBe(200);
    expect(on.body.maintenance).toMatchObject({ on: true, message: "Restoring last night's backup.", retryAfterSeconds: 120, since: expect.any(String) });

    const refused = [
      await client.post<ErrorBody>("/api/auth/register", memberCredentials("mtnew")),
      await client.put<ErrorBody>("/api/users/me/password", { currentPassword: member.password, newPassword: "another-password-1" }, { bearer: member.token }),
      await client.request<ErrorBody>("POST", "/api/uploads", { bearer: member.token, headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "10" } }),
      await client.delete<ErrorBody>("/api/users/me", undefined, { bearer: member.token }),
    ];
    for (const answer of refused) {
      expect(answer.status).toBe(503);
      expect(answer.headers.get("retry-after")).toBe("120");
      expect(answer.body.error).toMatchObject({ code: "maintenance", message: "Restoring last night's backup." });
    }
    expect((await client.get("/api/users/me", { bearer: member.token })).status).toBe(200);
    expect((await client.get("/api/media")).status).toBe(200);
    expect(await signIn(node.baseUrl, member.username, member.password)).toEqual(expect.any(String));
    const seen = await client.get<{ maintenance: { on: boolean } }>("/api/admin/maintenance", { bearer: admin.token });
    expect(seen.body.maintenance.on).toBe(true);

    expect((await client.put("/api/admin/maintenance", { on: false }, { bearer: admin.token })).status).toBe(200);
    expect((await client.post("/api/auth/register", memberCredentials("mtafter"))).status).toBe(201);
    const audit = await node.broker.call<{ items: { action: string }[] }, object>("site.listAudit", {}, { meta: { user: { id: "operator", role: "admin", username: "operator" } } });
    expect(audit.items.map((item) => item.action)).toEqual(expect.arrayContaining(["maintenance.on", "maintenance.off"]));
  }, 120_000);
});

describe("maintenance switch, cluster", () => {
  let services: TestServices;
  let nodes: RunningNode[];

  beforeAll(async () => {
    services = await startServices({ mariadb: { replicas: 0, templateDir: process.env.SHOAL_TEST_MARIADB_TEMPLATE }, redis: true, nats: true, s3: true });
    const env = envFor(services);
    nodes = [await startNode({ ...env, NODE_ID: "maint-a" }), await startNode({ ...env, NODE_ID: "maint-b" })];
  }, 180_000);

  afterAll(async () => {
    await stopAllNodes();
    await services?.stop();
  }, 60_000);

  it("switched on through one node, the other refuses changes too; switched off through the REPL's call, both accept them", async () => {
    const [a, b] = nodes as [RunningNode, RunningNode];
    const admin = await adminOf(a, "mtcadm");
    const onA = new HttpClient(a.baseUrl, { origin: null });
    const onB = new HttpClient(b.baseUrl, { origin: null });
    expect((await onA.put("/api/admin/maintenance", { on: true }, { bearer: admin.token })).status).toBe(200);
    const refused = await eventually(() => onB.post<ErrorBody>("/api/auth/register", memberCredentials("mtc")), (answer) => answer.status === 503);
    expect(refused.body.error.code).toBe("maintenance");
    expect(refused.headers.get("retry-after")).toBe("300");
    expect((await onB.get("/api/media")).status).toBe(200);

    await b.broker.call("api.setMaintenance", { on: false }, { nodeID: "maint-b" });
    await eventually(() => onA.post("/api/auth/register", memberCredentials("mtc2")), (answer) => answer.status === 201);
    expect((await onB.post("/api/auth/register", memberCredentials("mtc3"))).status).toBe(201);
  }, 120_000);
});

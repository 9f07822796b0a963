import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { eventually, startNode, stopAllNodes } from "../support/nodes";

let services: TestServices;

interface HealthBody {
  status: string;
  checks: Record<string, { status: string; error?: string }>;
}

async function health(baseUrl: string, path = "/api/health"): Promise<{ status: number; body: HealthBody }> {
  const response = await fetch(`${baseUrl}${path}`);
  return { status: response.status, body: (await response.json()) as HealthBody };
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 0 }, redis: true, nats: true, s3: true });
}, 120_000);

afterAll(async () => {
  await stopAllNodes();
  await services?.stop();
});

test("a node started while MariaDB, Redis and NATS are down answers 503 saying what it waits for, then comes up with them", async () => {
  await Promise.all([services.mariadb!.primary.stop(), services.redis!.stop(), services.nats!.stop()]);
  const node = await startNode({ ...envFor(services), SERVICES: "api,users", METRICS_PORT: "0" }, { waitForStart: false });
  const waiting = await eventually(
    () => (node.port ? health(node.baseUrl) : Promise.resolve(undefined)),
    (answer) => answer !== undefined,
  );
  expect(waiting?.status).toBe(503);
  expect(waiting?.body.status).toBe("starting");
  // Redis is optional for serving (degraded); the database and the transporter are not.
  expect(waiting?.body.checks.cache).toEqual({ status: "degraded" });
  expect(waiting?.body.checks.transporter).toEqual({ status: "down" });
  expect((await health(node.baseUrl, "/api/health/live")).status).toBe(200);
  // The details (hosts, ports, error text) are on the operators' listener only.
  const detailed = `http://127.0.0.1:${node.metricsPort ?? 0}`;

  const other = await fetch(`${node.baseUrl}/api/users/01ARZ3NDEKTSV4RRFFQ69G5FAV`);
  expect(other.status).toBe(503);
  expect(await other.json()).toEqual({ error: { code: "unavailable", message: expect.any(String), fields: {} } });

  await Promise.all([services.nats!.start(), services.redis!.start()]);
  const stillWaiting = await eventually(
    () => health(detailed, "/health"),
    (answer) => answer.body.checks.transporter?.status === "ok" && answer.body.checks.cache?.status === "ok",
    30_000,
  );
  expect(stillWaiting.status).toBe(503);
  expect(stillWaiting.body.checks["database:membership"]).toMatchObject({ status: "down", error: expect.stringMatching(/waiting for the membership database/) });

  await services.mariadb!.primary.start();
  const up = await eventually(() => health(node.baseUrl), (answer) => answer.status === 200, 60_000);
  expect(JSON.stringify(up.body)).not.toMatch(/127\.0\.0\.1|:\d{4,5}|error/);
  expect(up.body.status).toBe("ok");
  const found = await fetch(`${node.baseUrl}/api/users/01ARZ3NDEKTSV4RRFFQ69G5FAV`);
  expect(found.status).toBe(404);
}, 120_000);

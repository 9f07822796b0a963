/**
 * The load balancer's probe on a cluster api node whose bucket fails: the bucket is shared by every node, so a
 * failing one must not take them all out of rotation; the node stays ready and says so (`storage` down, degraded).
 */
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { eventually, startNode, stopAllNodes } from "../support/nodes";

let services: TestServices;

beforeAll(async () => {
  services = await startServices({ redis: true, nats: true, s3: true });
}, 120_000);

afterAll(async () => {
  await stopAllNodes();
  await services?.stop();
});

test("an api node whose S3 bucket does not exist answers /api/health/ready 200 degraded, naming storage down", async () => {
  // An api-only node opens no database; the settings still name one.
  const node = await startNode({ ...envFor(services), MYSQL_PRIMARY_URL: "mysql://shoal:unused@127.0.0.1:9/shoal", S3_BUCKET: "no-such-bucket", SERVICES: "api", NODE_ID: "probe-api" });
  const probe = await eventually(
    async () => {
      const response = await fetch(`${node.baseUrl}/api/health/ready`);
      return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, { status: string }> } };
    },
    (answer) => answer.body.checks.storage !== undefined,
    30_000,
  );
  expect(probe).toMatchObject({ status: 200, body: { status: "degraded", checks: { storage: { status: "down" }, transporter: { status: "ok" } } } });
}, 120_000);

import { startServices, envFor } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import type { DrillResult } from "../../lib/backups/drill";
import { startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

let services: TestServices;
let nodes: RunningNode[];

interface BackupNow {
  backups: { database: string; id: string; error?: string }[];
  drills: DrillResult[];
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1, templateDir: process.env.SHOAL_TEST_MARIADB_TEMPLATE }, redis: true, nats: true, s3: true });
  const mariadb = services.mariadb!;
  const env = { ...envFor(services), MYSQL_ADMIN_USER: mariadb.adminUser, MYSQL_ADMIN_PASSWORD: mariadb.adminPassword };
  nodes = [await startNode({ ...env, NODE_ID: "backup-a" }), await startNode({ ...env, NODE_ID: "backup-b" })];
}, 180_000);

afterAll(async () => {
  await stopAllNodes();
  await services?.stop();
}, 60_000);

test("with two nodes asked at once, one backs up and drills, the other is refused", async () => {
  const answers = await Promise.allSettled(nodes.map((node) => node.broker.call<BackupNow, object>("backup.backupNow", {}, { nodeID: node.broker.nodeID })));
  const done = answers.flatMap((answer) => (answer.status === "fulfilled" ? [answer.value] : []));
  const refused = answers.flatMap((answer) => (answer.status === "rejected" ? [answer.reason as Error] : []));
  expect(refused.map((error) => error.message)).toEqual([expect.stringContaining("already running")]);
  expect(done).toHaveLength(1);
  expect(done[0]?.backups.map((backup) => [backup.database, backup.error])).toEqual([
    ["membership", undefined],
    ["media", undefined],
    ["site", undefined],
  ]);
  expect(done[0]?.drills.map((drill) => [drill.database, drill.outcome, drill.reason])).toEqual([
    ["membership", "passed", null],
    ["media", "passed", null],
    ["site", "passed", null],
  ]);
}, 240_000);

/**
 * NODE_PROCESSES=2: one cluster node runs as two processes sharing its port (Node's cluster module). Both
 * serve, each with its own metrics port; a process killed with SIGKILL is started again while the other goes
 * on serving; SIGTERM stops the group with exit code 0 and leaves no process behind.
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { freePort } from "../../scripts/services/ports";
import { startNodeProcess, stopAllNodeProcesses } from "../support/node-process";
import type { NodeProcess } from "../support/node-process";
import { eventually } from "../support/nodes";

const GROUP_SERVES = /all 2 processes serve on port (\d+)/;

let services: TestServices;
let dataDir: string;

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 0 }, redis: true, nats: true, s3: true });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-group-"));
}, 120_000);

afterAll(async () => {
  await stopAllNodeProcesses();
  await services?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** GET on a connection of its own, so that the group hands each request to the next process. */
function getOnNewConnection(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers: { Connection: "close" } }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

/** How many media.list calls this process has answered, from its own /metrics. */
async function feedCallsOf(metricsPort: number): Promise<{ node: string; calls: number }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const line = text.split("\n").find((row) => row.startsWith("moleculer_request_total{") && row.includes('action="media.list"'));
  return { node: /nodeID="([^"]+)"/.exec(text)?.[1] ?? "", calls: line === undefined ? 0 : Number(line.split(" ").pop()) };
}

test("two processes share the port, each one is restarted when killed, and SIGTERM stops them all", async () => {
  const metricsPort = await freePort();
  const group: NodeProcess = await startNodeProcess(
    { ...envFor(services), NODE_ID: "grouped", NODE_PROCESSES: "2", METRICS_PORT: String(metricsPort), SHOAL_DATA_DIR: dataDir },
    { waitFor: GROUP_SERVES, startTimeoutMs: 120_000 },
  );
  const port = Number(GROUP_SERVES.exec(group.output())?.[1]);
  expect(group.descendants().filter((child) => child.argv.some((arg) => arg.endsWith("server.ts")))).toHaveLength(2);

  for (const host of ["127.0.0.1", "localhost"]) {
    expect((await getOnNewConnection(`http://${host}:${port}/api/health`)).status).toBe(200);
  }
  for (let request = 0; request < 12; request++) {
    expect((await getOnNewConnection(`http://127.0.0.1:${port}/api/media?scope=public`)).status).toBe(200);
  }
  const [first, second] = await Promise.all([feedCallsOf(metricsPort), feedCallsOf(metricsPort + 1)]);
  expect([first.node, second.node].sort()).toEqual(["grouped-0", "grouped-1"]);
  // Connections are handed out in turn: both processes answered the feed.
  expect(first.calls).toBeGreaterThan(0);
  expect(second.calls).toBeGreaterThan(0);

  const servers = () => group.descendants().filter((child) => child.argv.some((arg) => arg.endsWith("server.ts")));
  const victim = servers()[0]!;
  process.kill(victim.pid, "SIGKILL");
  await group.waitForOutput(/process \d \(pid \d+\) exited with signal SIGKILL; starting it again/);
  // The other process goes on serving meanwhile.
  expect((await getOnNewConnection(`http://127.0.0.1:${port}/api/health`)).status).toBe(200);
  await eventually(
    async () => servers().filter((child) => child.pid !== victim.pid).length,
    (count) => count === 2,
    60_000,
  );
  await eventually(
    () => Promise.all([feedCallsOf(metricsPort), feedCallsOf(metricsPort + 1)]).catch(() => []),
    (both) => both.length === 2,
    60_000,
  );

  const children = servers().map((child) => child.pid);
  process.kill(group.pid, "SIGTERM");
  expect(await group.exited).toEqual({ code: 0, signal: null });
  for (const pid of children) expect(() => process.kill(pid, 0)).toThrow();
  expect(group.output()).not.toMatch(/received again/);
}, 240_000);

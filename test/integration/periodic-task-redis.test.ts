/**
 * Periodic tasks on two "nodes" (two Redis clients) sharing the lease through a real Redis:
 * one of them runs each round.
 */
import { Redis } from "ioredis";
import { nanoid } from "nanoid";
import { RedisLeaseLock } from "../../lib/jobs/lease-lock";
import { PeriodicTask } from "../../lib/scheduling/periodic-task";
import type { PeriodicTaskOptions } from "../../lib/scheduling/periodic-task";
import { startRedis } from "../../scripts/services";
import type { RedisServer } from "../../scripts/services";

let redis: RedisServer;
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis();
  for (let i = 0; i < 2; i++) clients.push(new Redis(redis.url));
});

afterAll(async () => {
  clients.forEach((client) => client.disconnect());
  await redis?.dispose();
});

const log = { warn: () => undefined };

/** One task per node on the same lease key; `ran` lists which node ran each time. */
function onBothNodes(key: string, options: Partial<PeriodicTaskOptions<string>>, ran: string[], workMs = 200): PeriodicTask<string>[] {
  return clients.map(
    (client, index) =>
      new PeriodicTask<string>({
        name: "sweep",
        schedule: { everyMs: 3_600_000 },
        log,
        lock: new RedisLeaseLock(client, key),
        run: async () => {
          ran.push(`node ${index}`);
          await new Promise((resolve) => setTimeout(resolve, workMs));
          return `node ${index}`;
        },
        ...options,
      }),
  );
}

test("two nodes asked at once: one runs, the other skips; the lease is free again after the run", async () => {
  const key = `test:lock:${nanoid()}`;
  const ran: string[] = [];
  const nodes = onBothNodes(key, {}, ran);
  const runs = await Promise.all(nodes.map((node) => node.runNow()));
  expect(runs.map((run) => run.outcome).sort()).toEqual(["skipped", "succeeded"]);
  expect(runs.find((run) => run.outcome === "skipped")?.reason).toBe("another node holds the lease");
  expect(ran).toHaveLength(1);
  expect(await clients[0]!.exists(key)).toBe(0);
  expect((await nodes[1]!.runNow()).outcome).toBe("succeeded");
});

test("two nodes on the same schedule, keeping the lease after a success: one run across both within the lease", async () => {
  const key = `test:lock:${nanoid()}`;
  const ran: string[] = [];
  const nodes = onBothNodes(key, { schedule: { everyMs: 150 }, leaseMs: 60_000, keepLeaseAfterSuccess: true }, ran, 20);
  nodes.forEach((node) => node.start());
  // Several firings on each node.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await Promise.all(nodes.map((node) => node.stop()));
  expect(ran).toHaveLength(1);
  const statuses = nodes.map((node) => node.status());
  expect(statuses.filter((status) => status.lastRun?.outcome === "succeeded")).toHaveLength(1);
  expect(statuses.every((status) => status.lastSkipped?.reason === "another node holds the lease")).toBe(true);
  expect(await clients[0]!.pttl(key)).toBeGreaterThan(0);
});

test("Redis gone: the run is recorded as failed with the reason, and logged", async () => {
  const warnings: string[] = [];
  const offline = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false });
  offline.on("error", () => undefined);
  const task = new PeriodicTask({
    name: "sweep",
    schedule: { everyMs: 60_000 },
    log: { warn: (message) => warnings.push(message) },
    lock: new RedisLeaseLock(offline, `test:lock:${nanoid()}`),
    run: async () => "ran",
  });
  const run = await task.runNow();
  expect(run).toMatchObject({ outcome: "failed", reason: expect.stringMatching(/^the lease could not be taken: /) });
  expect(warnings).toEqual([expect.stringMatching(/^sweep failed \(demand, 1 in a row\): the lease could not be taken/)]);
  offline.disconnect();
});

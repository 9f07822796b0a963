/**
 * Periodic tasks and singleton duties on two "nodes" (two Redis clients) sharing the lease through a
 * real Redis: one of them runs each round, or the duty.
 */
import { Redis } from "ioredis";
import { nanoid } from "nanoid";
import { RedisLeaseLock } from "../../lib/jobs/lease-lock";
import { PeriodicTask } from "../../lib/scheduling/periodic-task";
import type { PeriodicTaskOptions } from "../../lib/scheduling/periodic-task";
import { SingletonDuty } from "../../lib/scheduling/singleton-duty";
import { startRedis } from "../../scripts/services";
import type { RedisServer } from "../../scripts/services";
import { eventually } from "../support/nodes";

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

describe("SingletonDuty on the Redis lease", () => {
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  function dutiesOnBothNodes(key: string, running: Set<number>, begun: number[]): SingletonDuty[] {
    return clients.map(
      (client, index) =>
        new SingletonDuty({
          name: "archiver",
          lock: new RedisLeaseLock(client, key),
          leaseMs: 600,
          log: { info: () => undefined, warn: () => undefined },
          begin: async () => {
            running.add(index);
            begun.push(index);
            return async () => {
              running.delete(index);
            };
          },
        }),
    );
  }

  test("runs on one node; when that node stops, the other takes over", async () => {
    const running = new Set<number>();
    const begun: number[] = [];
    const duties = dutiesOnBothNodes(`test:lock:${nanoid()}`, running, begun);
    duties.forEach((duty) => duty.start());
    await eventually(async () => running.size, (size) => size === 1);
    // Several renewals later, still the one node.
    await wait(1000);
    expect(begun).toHaveLength(1);
    expect(running.size).toBe(1);
    const holder = begun[0]!;
    expect(duties.map((duty) => duty.status().holding)).toEqual([holder === 0, holder === 1]);
    await duties[holder]!.stop();
    await eventually(async () => [...running], (nodes) => nodes.length === 1 && nodes[0] !== holder);
    expect(begun).toEqual([holder, 1 - holder]);
    await Promise.all(duties.map((duty) => duty.stop()));
    expect(running.size).toBe(0);
  });

  test("a holder whose lease was taken from it stops the duty at its next renewal", async () => {
    const key = `test:lock:${nanoid()}`;
    const running = new Set<number>();
    const begun: number[] = [];
    const [duty] = dutiesOnBothNodes(key, running, begun);
    duty!.start();
    await eventually(async () => running.size, (size) => size === 1);
    // As if the lease had run out and another node had taken it.
    await clients[0]!.set(key, "another node", "PX", 60_000);
    await eventually(async () => running.size, (size) => size === 0);
    expect(duty!.status().holding).toBe(false);
    await duty!.stop();
  });
});

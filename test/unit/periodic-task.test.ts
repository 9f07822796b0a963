import { MemoryLeaseLock } from "../../lib/jobs/lease-lock";
import type { LeaseLock } from "../../lib/jobs/lease-lock";
import { PeriodicTask } from "../../lib/scheduling/periodic-task";
import type { Clock, PeriodicTaskOptions } from "../../lib/scheduling/periodic-task";
import { PeriodicTasks } from "../../lib/scheduling/periodic-tasks";
import { cronSchedule, nextFiring } from "../../lib/scheduling/schedule";

/** Time moves only when the test says; timers due by then fire in order. */
class FakeClock implements Clock {
  private timers = new Map<number, { at: number; callback: () => void }>();
  private nextId = 1;

  constructor(private current: number) {}

  now(): number {
    return this.current;
  }

  setTimer(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.current + Math.min(ms, 2 ** 31 - 1), callback });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  async advance(ms: number): Promise<void> {
    const end = this.current + ms;
    await settle();
    for (;;) {
      const due = [...this.timers.entries()].filter(([, timer]) => timer.at <= end).sort(([, a], [, b]) => a.at - b.at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.current = due[1].at;
      due[1].callback();
      await settle();
    }
    this.current = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A lease shared by the "nodes" of a test, on the fake clock; counts acquisitions and releases. */
class FakeLock implements LeaseLock {
  heldUntil = 0;
  acquired: number[] = [];
  released = 0;
  failWith: Error | undefined;

  constructor(private readonly clock: FakeClock) {}

  async tryAcquire(leaseMs: number): Promise<(() => Promise<void>) | undefined> {
    if (this.failWith) throw this.failWith;
    if (this.heldUntil > this.clock.now()) return undefined;
    const until = this.clock.now() + leaseMs;
    this.heldUntil = until;
    this.acquired.push(leaseMs);
    return async () => {
      this.released++;
      if (this.heldUntil === until) this.heldUntil = 0;
    };
  }
}

const START = Date.parse("2026-03-01T00:00:00Z");

function setup(overrides: Partial<PeriodicTaskOptions<string>> = {}) {
  const clock = new FakeClock(START);
  const lock = new FakeLock(clock);
  const warnings: string[] = [];
  const runs: string[] = [];
  const options: PeriodicTaskOptions<string> = {
    name: "sweep",
    schedule: { everyMs: 60_000 },
    lock,
    clock,
    log: { warn: (message) => warnings.push(message) },
    run: async (trigger) => {
      runs.push(`${trigger}@${(clock.now() - START) / 1000}`);
      return "done";
    },
    ...overrides,
  };
  return { clock, lock, warnings, runs, options };
}

describe("PeriodicTask", () => {
  it("runs on each firing of an interval, at start only when asked, and records the last run", async () => {
    const { clock, runs, options } = setup({ runAtStart: true });
    const task = new PeriodicTask(options);
    task.start();
    await clock.advance(150_000);
    expect(runs).toEqual(["start@0", "schedule@60", "schedule@120"]);
    expect(task.status()).toMatchObject({
      name: "sweep",
      schedule: "every 60 s",
      running: false,
      nextRunAt: START + 180_000,
      lastRun: { trigger: "schedule", outcome: "succeeded", result: "done", startedAt: START + 120_000 },
      lastSuccessAt: START + 120_000,
      failuresInARow: 0,
    });
    await task.stop();
  });

  it("follows a cron schedule", async () => {
    const { clock, runs, options } = setup({ schedule: cronSchedule("30 2 * * *", "UTC") });
    const task = new PeriodicTask(options);
    task.start();
    expect(task.status().nextRunAt).toBe(Date.parse("2026-03-01T02:30:00Z"));
    await clock.advance(2 * 24 * 3600_000);
    expect(runs).toEqual([`schedule@${2.5 * 3600}`, `schedule@${26.5 * 3600}`]);
    await task.stop();
  });

  it("refuses a malformed cron expression with the reason", () => {
    expect(() => cronSchedule("every night")).toThrow(/"every night" is not a cron schedule/);
    expect(() => cronSchedule("61 * * * *")).toThrow(/is not a cron schedule/);
    expect(() => nextFiring({ everyMs: 0 }, START)).toThrow(/interval must be positive/);
  });

  it("runs on one node only when two share the lease", async () => {
    const { clock, lock, options } = setup();
    const runsOn: string[] = [];
    let finish: () => void = () => undefined;
    const nodes = ["a", "b"].map(
      (node) =>
        new PeriodicTask({
          ...options,
          run: async () => {
            runsOn.push(node);
            await new Promise<void>((resolve) => {
              finish = resolve;
            });
            return node;
          },
        }),
    );
    nodes.forEach((node) => node.start());
    await clock.advance(60_000);
    expect(runsOn).toHaveLength(1);
    finish();
    await settle();
    const skipped = nodes.find((node) => node.status().lastRun === undefined);
    expect(skipped?.status().lastSkipped).toMatchObject({ outcome: "skipped", reason: "another node holds the lease" });
    // Released after the run: the next firing may run anywhere, once.
    expect(lock.released).toBe(1);
    await clock.advance(60_000);
    expect(runsOn).toHaveLength(2);
    finish();
    await Promise.all(nodes.map((node) => node.stop()));
  });

  it("keeps the lease after a success when asked, so that no node runs again within it; a failure frees it", async () => {
    const { clock, lock, options } = setup({ keepLeaseAfterSuccess: true, leaseMs: 60_000 });
    let fail = false;
    const task = new PeriodicTask({
      ...options,
      run: async () => {
        if (fail) throw new Error("database gone");
        return "ok";
      },
    });
    expect((await task.runNow()).outcome).toBe("succeeded");
    expect(lock.released).toBe(0);
    expect((await task.runNow()).outcome).toBe("skipped");
    await clock.advance(60_000);
    fail = true;
    expect((await task.runNow()).outcome).toBe("failed");
    expect(lock.released).toBe(1);
    expect(lock.acquired).toEqual([60_000, 60_000]);
  });

  it("records and logs a failure, counts failures in a row, and a success resets the count", async () => {
    const { clock, warnings, options } = setup();
    let fail = true;
    const task = new PeriodicTask({
      ...options,
      run: async () => {
        if (fail) throw new Error("S3 answered 503");
        return "ok";
      },
    });
    task.start();
    await clock.advance(120_000);
    expect(task.status()).toMatchObject({ failuresInARow: 2, lastRun: { outcome: "failed", reason: "S3 answered 503" }, lastSuccessAt: undefined });
    expect(warnings).toEqual(["sweep failed (schedule, 1 in a row): S3 answered 503", "sweep failed (schedule, 2 in a row): S3 answered 503"]);
    fail = false;
    await clock.advance(60_000);
    expect(task.status()).toMatchObject({ failuresInARow: 0, lastRun: { outcome: "succeeded" }, lastSuccessAt: START + 180_000 });
    await task.stop();
  });

  it("reports a lease store that does not answer as a failed run", async () => {
    const { lock, warnings, options } = setup();
    lock.failWith = new Error("connection closed");
    const task = new PeriodicTask(options);
    expect(await task.runNow()).toMatchObject({ outcome: "failed", reason: "the lease could not be taken: connection closed" });
    expect(warnings).toHaveLength(1);
  });

  it("does not start a second run on this node while one is going", async () => {
    let finish: () => void = () => undefined;
    const { options } = setup({
      run: () =>
        new Promise<string>((resolve) => {
          finish = () => resolve("slow");
        }),
    });
    const task = new PeriodicTask(options);
    const first = task.runNow();
    await settle();
    expect(task.status().running).toBe(true);
    expect(await task.runNow()).toMatchObject({ outcome: "skipped", reason: "the previous run is still going on this node" });
    finish();
    expect(await first).toMatchObject({ outcome: "succeeded", result: "slow" });
  });

  it("stops: no more firings, the running one sees the abort and is waited for", async () => {
    const { clock, runs, options } = setup();
    let aborted = false;
    const task = new PeriodicTask({
      ...options,
      run: (trigger, signal) =>
        new Promise<string>((resolve) => {
          runs.push(trigger);
          signal.addEventListener("abort", () => {
            aborted = true;
            resolve("stopped early");
          });
        }),
    });
    task.start();
    await clock.advance(60_000);
    expect(task.status().running).toBe(true);
    await task.stop();
    expect(aborted).toBe(true);
    expect(task.status()).toMatchObject({ running: false, nextRunAt: undefined });
    await clock.advance(600_000);
    expect(runs).toEqual(["schedule"]);
    expect(() => task.start()).toThrow(/was stopped/);
  });
});

describe("PeriodicTasks", () => {
  it("gives each task the lease named after it, lists their status, and stops them all", async () => {
    const clock = new FakeClock(START);
    const locks = new Map<string, FakeLock>();
    const tasks = new PeriodicTasks((name) => {
      const lock = new FakeLock(clock);
      locks.set(name, lock);
      return lock;
    });
    const log = { warn: () => undefined };
    tasks.schedule({ name: "reconciler", schedule: { everyMs: 30_000 }, clock, log, run: async () => 1 });
    tasks.schedule({ name: "tombstone-sweep", schedule: { everyMs: 60_000 }, clock, log, run: async () => 2 });
    await clock.advance(60_000);
    expect([...locks.keys()]).toEqual(["reconciler", "tombstone-sweep"]);
    expect(tasks.status().map((status) => [status.name, status.lastRun?.result])).toEqual([
      ["reconciler", 1],
      ["tombstone-sweep", 2],
    ]);
    await tasks.stopAll();
    expect(tasks.status()).toEqual([]);
    expect(locks.get("reconciler")?.acquired).toHaveLength(2);
  });
});

describe("MemoryLeaseLock held and renewed", () => {
  it("is held by one until released or run out; renewing keeps it, and fails once it ran out", async () => {
    const lock = new MemoryLeaseLock();
    const lease = await lock.tryHold(10_000);
    expect(lease).toBeDefined();
    expect(await lock.tryHold(10_000)).toBeUndefined();
    expect(await lock.tryAcquire(10_000)).toBeUndefined();
    expect(await lease!.renew(20)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(await lease!.renew(10_000)).toBe(false);
    const next = await lock.tryHold(10_000);
    expect(next).toBeDefined();
    // The run-out lease's release does not free the next holder's.
    await lease!.release();
    expect(await lock.tryHold(10_000)).toBeUndefined();
    await next!.release();
    expect(await lock.tryHold(10_000)).toBeDefined();
  });
});

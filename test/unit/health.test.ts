import type { CheckResult } from "../../lib/health";
import { HealthRegistry, isServing, publicHealthView, READINESS_MAX_AGE_MS, READINESS_REFRESH_MS } from "../../lib/health";

const ok = (): CheckResult => ({ status: "ok" });
const down = (): CheckResult => ({ status: "down" });

/** A registry of a node whose services have all started. */
function readyRegistry(): HealthRegistry {
  const registry = new HealthRegistry();
  registry.setPhase("ready");
  return registry;
}

describe("readiness", () => {
  it("is starting until the node says it is ready, however healthy its checks, and stopping once it stops", async () => {
    const registry = new HealthRegistry();
    registry.register("database", ok);
    expect(await registry.run()).toEqual({ status: "starting", checks: { database: { status: "ok" } } });
    expect(isServing(await registry.run())).toBe(false);
    registry.setPhase("ready");
    expect(isServing(await registry.run())).toBe(true);
    registry.setPhase("stopping");
    expect((await registry.run()).status).toBe("stopping");
    expect(isServing(await registry.run())).toBe(false);
  });

  it("shows anonymous callers each check's name and status only: no hosts, paths or error text", async () => {
    const registry = readyRegistry();
    registry.register("database:media", () => ({ status: "down", primary: { host: "db.internal:3306", error: "ECONNREFUSED 10.0.0.5:3306" } }));
    registry.register("storage", () => ({ status: "ok", dir: "/srv/shoal/data/objects" }), { required: false });
    const view = publicHealthView(await registry.run());
    expect(view).toEqual({ status: "down", checks: { "database:media": { status: "down" }, storage: { status: "ok" } } });
    expect(JSON.stringify(view)).not.toMatch(/db\.internal|10\.0\.0\.5|\/srv/);
  });
});

describe("HealthRegistry", () => {
  it("is ok with no checks", async () => {
    expect(await readyRegistry().run()).toEqual({ status: "ok", checks: {} });
  });

  it("is ok when every check is ok, and reports each check with its details", async () => {
    const registry = readyRegistry();
    registry.register("membership-db", () => ({ status: "ok", replicasInRotation: 2 }));
    registry.register("cache", async () => ({ status: "ok" }), { required: false });
    expect(await registry.run()).toEqual({
      status: "ok",
      checks: { "membership-db": { status: "ok", replicasInRotation: 2 }, cache: { status: "ok" } },
    });
  });

  it("is degraded when a non-required check is down", async () => {
    const registry = readyRegistry();
    registry.register("database", ok);
    registry.register("cache", down, { required: false });
    const report = await registry.run();
    expect(report.status).toBe("degraded");
    expect(report.checks.cache.status).toBe("down");
  });

  it("is degraded when a required check is only degraded", async () => {
    const registry = readyRegistry();
    registry.register("database", () => ({ status: "degraded", replicasInRotation: 0 }));
    expect((await registry.run()).status).toBe("degraded");
  });

  it("is down when a required check is down, whatever the others say", async () => {
    const registry = readyRegistry();
    registry.register("cache", () => ({ status: "degraded" }), { required: false });
    registry.register("database", down, { required: true });
    registry.register("storage", ok);
    expect((await registry.run()).status).toBe("down");
  });

  it("treats checks as required unless told otherwise", async () => {
    const registry = readyRegistry();
    registry.register("database", down);
    expect((await registry.run()).status).toBe("down");
  });

  it("reports a check that throws or rejects as down with its message", async () => {
    const registry = readyRegistry();
    registry.register("sync", () => {
      throw new Error("ECONNREFUSED 127.0.0.1:3306");
    });
    registry.register("async", async () => {
      throw new Error("NOAUTH Authentication required");
    }, { required: false });
    registry.register("odd", () => {
      throw "just a string";
    }, { required: false });
    const report = await registry.run();
    expect(report.status).toBe("down");
    expect(report.checks).toEqual({
      sync: { status: "down", error: "ECONNREFUSED 127.0.0.1:3306" },
      async: { status: "down", error: "NOAUTH Authentication required" },
      odd: { status: "down", error: "just a string" },
    });
  });

  describe("with a slow dependency", () => {
    beforeEach(() => {
      jest.useFakeTimers();
    });

    afterEach(() => {
      jest.useRealTimers();
    });

    it("reports a check that never answers as down after 2 s", async () => {
      const registry = readyRegistry();
      registry.register("database", () => new Promise<CheckResult>(() => undefined));
      registry.register("cache", ok, { required: false });
      let settled = false;
      const pending = registry.run().then((report) => {
        settled = true;
        return report;
      });
      await jest.advanceTimersByTimeAsync(1999);
      expect(settled).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      const report = await pending;
      expect(report.status).toBe("down");
      expect(report.checks.database.status).toBe("down");
      expect(report.checks.database.error).toEqual(expect.stringContaining("2000 ms"));
      expect(report.checks.cache).toEqual({ status: "ok" });
    });

    it("waits for a check that answers in time", async () => {
      const registry = readyRegistry();
      registry.register(
        "database",
        () => new Promise<CheckResult>((resolve) => setTimeout(() => resolve({ status: "ok" }), 1500)),
      );
      const pending = registry.run();
      await jest.advanceTimersByTimeAsync(1500);
      expect(await pending).toEqual({ status: "ok", checks: { database: { status: "ok" } } });
    });

    it("runs the checks concurrently, so slow checks do not add up", async () => {
      const registry = readyRegistry();
      for (const name of ["a", "b", "c"]) {
        registry.register(name, () => new Promise<CheckResult>((resolve) => setTimeout(() => resolve({ status: "ok" }), 1500)));
      }
      let settled = false;
      const pending = registry.run().then((report) => {
        settled = true;
        return report;
      });
      await jest.advanceTimersByTimeAsync(1500);
      expect(settled).toBe(true);
      expect((await pending).status).toBe("ok");
    });
  });

  it("stops reporting a check once unregistered", async () => {
    const registry = readyRegistry();
    registry.register("database", ok);
    registry.register("old-cache", down);
    expect((await registry.run()).status).toBe("down");
    registry.unregister("old-cache");
    expect(await registry.run()).toEqual({ status: "ok", checks: { database: { status: "ok" } } });
  });

  it("replaces a check registered again under the same name", async () => {
    const registry = readyRegistry();
    registry.register("database", down);
    registry.register("database", ok);
    expect(await registry.run()).toEqual({ status: "ok", checks: { database: { status: "ok" } } });
  });
});

describe("the readiness probe (HealthRegistry.readiness)", () => {
  /** A ready registry on a clock the test moves, with a cache check whose answer and number of runs the test sees. */
  function probed(): { registry: HealthRegistry; clock: { now: number }; cache: { answer: CheckResult; runs: number } } {
    const clock = { now: 1_000_000 };
    const cache = { answer: { status: "ok" } as CheckResult, runs: 0 };
    const registry = new HealthRegistry(() => clock.now);
    registry.register("database", ok);
    registry.register("cache", () => {
      cache.runs++;
      return cache.answer;
    });
    registry.setPhase("ready");
    return { registry, clock, cache };
  }

  it("answers from the last run of the checks while it is fresh, without running them again", async () => {
    const { registry, clock, cache } = probed();
    expect((await registry.readiness()).status).toBe("ok");
    expect(cache.runs).toBe(1);
    cache.answer = { status: "down" };
    clock.now += READINESS_REFRESH_MS - 1;
    expect((await registry.readiness()).status).toBe("ok");
    expect(cache.runs).toBe(1);
  });

  it("answers from a last run older than the refresh interval and runs the checks again behind it, for the next probe", async () => {
    const { registry, clock, cache } = probed();
    await registry.readiness();
    cache.answer = { status: "down" };
    clock.now += READINESS_REFRESH_MS;
    expect((await registry.readiness()).status).toBe("ok");
    // The run started behind that answer settles within the pending promise jobs.
    await new Promise((resolve) => setImmediate(resolve));
    expect(cache.runs).toBe(2);
    expect(await registry.readiness()).toEqual({ status: "down", checks: { database: { status: "ok" }, cache: { status: "down" } } });
  });

  it("does not believe a last run older than its maximum age: it waits for a new one", async () => {
    const { registry, clock, cache } = probed();
    await registry.readiness();
    cache.answer = { status: "down" };
    clock.now += READINESS_MAX_AGE_MS + 1;
    expect((await registry.readiness()).status).toBe("down");
    expect(cache.runs).toBe(2);
  });

  it("says stopping the moment the node stops, whatever the last run said", async () => {
    const { registry } = probed();
    expect(isServing(await registry.readiness())).toBe(true);
    registry.setPhase("stopping");
    expect(await registry.readiness()).toMatchObject({ status: "stopping" });
  });

  it("runs the checks again once the node is ready: results seen while it was starting are not reused", async () => {
    const clock = { now: 1_000_000 };
    const registry = new HealthRegistry(() => clock.now);
    let connected = false;
    registry.register("database", () => (connected ? { status: "ok" } : { status: "down", error: "starting" }));
    expect((await registry.readiness()).status).toBe("starting");
    connected = true;
    registry.setPhase("ready");
    expect(await registry.readiness()).toEqual({ status: "ok", checks: { database: { status: "ok" } } });
  });

  it("runs the checks once for probes that arrive together", async () => {
    const { registry, cache } = probed();
    const answers = await Promise.all([registry.readiness(), registry.readiness(), registry.run()]);
    expect(answers.map((answer) => answer.status)).toEqual(["ok", "ok", "ok"]);
    expect(cache.runs).toBe(1);
  });
});

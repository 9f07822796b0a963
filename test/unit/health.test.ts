import type { CheckResult } from "../../lib/health";
import { HealthRegistry, isServing, publicHealthView } from "../../lib/health";

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

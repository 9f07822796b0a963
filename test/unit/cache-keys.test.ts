import type { Context } from "moleculer";
import { ServiceBroker } from "moleculer";
import { cacheKeyPattern, jitteredTtl } from "../../lib/cache/cache-keys";

describe("cacheKeyPattern", () => {
  it("matches every entry of an action when no key value is given", () => {
    expect(cacheKeyPattern("users.get")).toBe("users.get:**");
  });

  it("is the action, a colon, then the leading key values joined by |", () => {
    expect(cacheKeyPattern("users.get", "01HZY3K9Q2")).toBe("users.get:01HZY3K9Q2*");
    expect(cacheKeyPattern("media.list", "01HZY3K9Q2", "public")).toBe("media.list:01HZY3K9Q2|public*");
  });

  describe("with Moleculer's memory cacher", () => {
    const ALICE = "01HZY3K9Q2ALICE0000000000A";
    const BOB = "01HZY3K9Q2BOB000000000000B";
    let broker: ServiceBroker;
    const loads: string[] = [];

    beforeAll(async () => {
      broker = new ServiceBroker({ logger: false, cacher: { type: "Memory", options: { ttl: 60 } } });
      for (const name of ["users", "media"]) {
        broker.createService({
          name,
          actions: {
            get: {
              cache: { keys: ["id"] },
              handler(ctx: Context<{ id: string }>) {
                loads.push(`${name}:${ctx.params.id}`);
                return { id: ctx.params.id };
              },
            },
          },
        });
      }
      await broker.start();
    });

    afterAll(async () => {
      await broker.stop();
    });

    beforeEach(async () => {
      await broker.cacher?.clean();
      loads.length = 0;
      for (const call of ["users.get", "media.get"]) {
        for (const id of [ALICE, BOB]) await broker.call(call, { id });
      }
      loads.length = 0;
    });

    async function reload(): Promise<string[]> {
      for (const call of ["users.get", "media.get"]) {
        for (const id of [ALICE, BOB]) await broker.call(call, { id });
      }
      return [...loads];
    }

    it("cleans exactly the entry of one key value", async () => {
      await broker.cacher?.clean(cacheKeyPattern("users.get", ALICE));
      expect(await reload()).toEqual([`users:${ALICE}`]);
    });

    it("cleans every entry of the action and nothing of other actions", async () => {
      await broker.cacher?.clean(cacheKeyPattern("users.get"));
      expect(await reload()).toEqual([`users:${ALICE}`, `users:${BOB}`]);
    });
  });
});

describe("jitteredTtl", () => {
  it("spans -10 % to +10 % of the TTL from the lowest to the highest random value", () => {
    expect(jitteredTtl(60, 0.1, () => 0)).toBe(54);
    expect(jitteredTtl(60, 0.1, () => 0.5)).toBe(60);
    expect(jitteredTtl(60, 0.1, () => 0.999999)).toBe(66);
    expect(jitteredTtl(60, 0.1, () => 1)).toBe(66);
  });

  it("uses ±10 % by default and stays within it with Math.random", () => {
    for (let i = 0; i < 1000; i++) {
      const ttl = jitteredTtl(600);
      expect(ttl).toBeGreaterThanOrEqual(540);
      expect(ttl).toBeLessThanOrEqual(660);
    }
  });

  it("actually spreads expiry of entries written together", () => {
    const values = new Set([0, 0.25, 0.5, 0.75, 1].map((r) => jitteredTtl(60, 0.1, () => r)));
    expect(values).toEqual(new Set([54, 57, 60, 63, 66]));
  });

  it("returns whole seconds", () => {
    for (const r of [0, 0.13, 0.37, 0.5, 0.81, 1]) expect(Number.isInteger(jitteredTtl(7, 0.1, () => r))).toBe(true);
  });

  it("never goes below one second", () => {
    expect(jitteredTtl(1, 0.1, () => 0)).toBe(1);
    expect(jitteredTtl(0.2, 0.1, () => 0)).toBe(1);
    expect(jitteredTtl(1, 0.9, () => 0)).toBe(1);
  });

  it("honours another fraction", () => {
    expect(jitteredTtl(100, 0.5, () => 0)).toBe(50);
    expect(jitteredTtl(100, 0.5, () => 1)).toBe(150);
  });
});

import { setImmediate as nextTick, setTimeout as sleep } from "node:timers/promises";
import { currentConsistencyKey, runWithConsistencyKey } from "../../lib/db/read-your-writes";
import { MemoryExpiringStore } from "../../lib/expiring-store";

describe("consistency key scope", () => {
  it("has no key outside any scope", () => {
    expect(currentConsistencyKey()).toBeUndefined();
  });

  it("exposes the key inside the scope and returns the work's result", () => {
    const result = runWithConsistencyKey("user-1", () => currentConsistencyKey());
    expect(result).toBe("user-1");
    expect(currentConsistencyKey()).toBeUndefined();
  });

  it("follows async work across awaits, timers and promise callbacks", async () => {
    const seen = await runWithConsistencyKey("user-1", async () => {
      const keys = [currentConsistencyKey()];
      await sleep(5);
      keys.push(currentConsistencyKey());
      await new Promise<void>((resolve) => setTimeout(resolve, 1));
      keys.push(currentConsistencyKey());
      keys.push(await Promise.resolve().then(() => currentConsistencyKey()));
      return keys;
    });
    expect(seen).toEqual(["user-1", "user-1", "user-1", "user-1"]);
    expect(currentConsistencyKey()).toBeUndefined();
  });

  it("keeps concurrent requests apart", async () => {
    const work = (key: string, delays: number[]) =>
      runWithConsistencyKey(key, async () => {
        const keys: (string | undefined)[] = [];
        for (const delay of delays) {
          await sleep(delay);
          keys.push(currentConsistencyKey());
        }
        return keys;
      });
    const [a, b] = await Promise.all([work("alice", [3, 1, 4]), work("bob", [1, 5, 1])]);
    expect(a).toEqual(["alice", "alice", "alice"]);
    expect(b).toEqual(["bob", "bob", "bob"]);
  });

  it("lets a nested scope override the key and restores the outer one after it", async () => {
    await runWithConsistencyKey("outer", async () => {
      const inner = await runWithConsistencyKey("inner", async () => {
        await nextTick();
        return currentConsistencyKey();
      });
      expect(inner).toBe("inner");
      expect(currentConsistencyKey()).toBe("outer");
    });
  });

  it("sets no key for an undefined key (anonymous work) and still runs the work", async () => {
    let ran = false;
    const key = await runWithConsistencyKey(undefined, async () => {
      ran = true;
      await nextTick();
      return currentConsistencyKey();
    });
    expect(ran).toBe(true);
    expect(key).toBeUndefined();
  });

  it("propagates errors thrown by the work", async () => {
    expect(() =>
      runWithConsistencyKey("user-1", () => {
        throw new Error("write failed");
      }),
    ).toThrow("write failed");
    await expect(runWithConsistencyKey("user-1", async () => Promise.reject(new Error("async failed")))).rejects.toThrow(
      "async failed",
    );
    expect(currentConsistencyKey()).toBeUndefined();
  });
});

describe("MemoryExpiringStore", () => {
  function storeWithClock(start = 1_000_000) {
    const clock = { now: start };
    return { clock, store: new MemoryExpiringStore(() => clock.now) };
  }

  it("recalls nothing for a key that never wrote", async () => {
    const { store } = storeWithClock();
    expect(await store.recall("user-1")).toBeUndefined();
  });

  it("recalls the remembered position within the window", async () => {
    const { clock, store } = storeWithClock();
    await store.remember("user-1", "bin.000003:4711", 30_000);
    expect(await store.recall("user-1")).toBe("bin.000003:4711");
    clock.now += 29_999;
    expect(await store.recall("user-1")).toBe("bin.000003:4711");
  });

  it("forgets the position once the window has passed", async () => {
    const { clock, store } = storeWithClock();
    await store.remember("user-1", "bin.000003:4711", 30_000);
    clock.now += 30_000;
    expect(await store.recall("user-1")).toBeUndefined();
    clock.now -= 10_000; // Expired entries stay forgotten even if the clock is turned back.
    expect(await store.recall("user-1")).toBeUndefined();
  });

  it("replaces an older mark with a newer one, including its window", async () => {
    const { clock, store } = storeWithClock();
    await store.remember("user-1", "pos-1", 1_000);
    clock.now += 900;
    await store.remember("user-1", "pos-2", 1_000);
    expect(await store.recall("user-1")).toBe("pos-2");
    clock.now += 500; // past the first window, within the second
    expect(await store.recall("user-1")).toBe("pos-2");
  });

  it("keeps each key's mark separate", async () => {
    const { store } = storeWithClock();
    await store.remember("alice", "pos-a", 1_000);
    await store.remember("bob", "pos-b", 1_000);
    expect(await store.recall("alice")).toBe("pos-a");
    expect(await store.recall("bob")).toBe("pos-b");
    expect(await store.recall("carol")).toBeUndefined();
  });

  it("stays bounded, dropping the key that wrote least recently", async () => {
    const { store } = storeWithClock();
    const cap = 100_000;
    for (let i = 0; i < cap; i++) await store.remember(`k${i}`, `p${i}`, 60_000);
    await store.remember("k0", "p0-again", 60_000); // k0 wrote again: k1 is now the least recent
    await store.remember("newcomer", "pn", 60_000);
    expect(await store.recall("k1")).toBeUndefined();
    expect(await store.recall("k0")).toBe("p0-again");
    expect(await store.recall("k2")).toBe("p2");
    expect(await store.recall("newcomer")).toBe("pn");
  });
});

import { addLocalLayer } from "../../lib/cache/local-layer";
import type { LayeredCacher } from "../../lib/cache/local-layer";

/** A shared cache in memory that counts its reads, and can hold a read open to race it against a clean. */
class SharedCache implements LayeredCacher {
  readonly entries = new Map<string, unknown>();
  reads = 0;
  heldRead: { release: () => void } | undefined;

  async get(key: string): Promise<unknown> {
    this.reads++;
    const value = this.entries.get(key) ?? null;
    if (this.heldRead === undefined) return value;
    await new Promise<void>((resolve) => (this.heldRead = { release: resolve }));
    return value;
  }
  async set(key: string, data: unknown): Promise<void> {
    this.entries.set(key, data);
  }
  async del(key: string | string[]): Promise<void> {
    for (const one of [key].flat()) this.entries.delete(one);
  }
  async clean(_match?: string | string[]): Promise<void> {
    this.entries.clear();
  }
}

function layered(now: () => number) {
  const shared = new SharedCache();
  addLocalLayer(shared, { holds: (key) => key.startsWith("page:"), ttlMs: 1000, entries: 8, now });
  return shared;
}

describe("the local layer in front of the shared cache", () => {
  test("a shared page is read from the shared cache once per second, and the same object is handed out", async () => {
    let clock = 0;
    const cache = layered(() => clock);
    const page = { items: [1, 2] };
    await cache.set("page:1", page);
    expect(await cache.get("page:1")).toBe(page);
    expect(await cache.get("page:1")).toBe(page);
    expect(cache.reads).toBe(0);
    clock = 1001;
    cache.entries.set("page:1", { items: [3] });
    expect(await cache.get("page:1")).toEqual({ items: [3] });
    expect(cache.reads).toBe(1);
  });

  test("entries that are not shared always come from the shared cache", async () => {
    const cache = layered(() => 0);
    await cache.set("mine:1", { a: 1 });
    await cache.get("mine:1");
    await cache.get("mine:1");
    expect(cache.reads).toBe(2);
  });

  test("a clean or a delete empties the layer at once", async () => {
    const cache = layered(() => 0);
    await cache.set("page:1", { v: 1 });
    await cache.clean("page:**");
    expect(await cache.get("page:1")).toBeNull();
    await cache.set("page:2", { v: 2 });
    await cache.del("other");
    cache.entries.set("page:2", { v: 3 });
    expect(await cache.get("page:2")).toEqual({ v: 3 });
  });

  test("a read that raced a clean is not kept: the next read asks the shared cache again", async () => {
    const cache = layered(() => 0);
    cache.entries.set("page:1", { stale: true });
    cache.heldRead = { release: () => undefined };
    const racing = cache.get("page:1");
    await new Promise((resolve) => setImmediate(resolve));
    const cleaning = cache.clean();
    cache.heldRead.release();
    cache.heldRead = undefined;
    expect(await racing).toEqual({ stale: true });
    await cleaning;
    cache.entries.set("page:1", { fresh: true });
    expect(await cache.get("page:1")).toEqual({ fresh: true });
  });

  test("a miss is not remembered", async () => {
    const cache = layered(() => 0);
    expect(await cache.get("page:9")).toBeNull();
    cache.entries.set("page:9", { v: 9 });
    expect(await cache.get("page:9")).toEqual({ v: 9 });
  });
});

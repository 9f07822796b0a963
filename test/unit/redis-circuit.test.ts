import { EventEmitter } from "node:events";
import { RedisCircuit, RedisUnavailableError } from "../../lib/cache/redis-circuit";
import type { WatchedClient } from "../../lib/cache/redis-circuit";
import { guardSharedCache } from "../../lib/cache/shared-cache-guard";
import type { GuardedCacher } from "../../lib/cache/shared-cache-guard";
import { ConnectionState } from "../../lib/transport/connection-state";

class FakeClient extends EventEmitter {
  status = "ready";
}

function circuitOn(client: FakeClient, recover = jest.fn(() => Promise.resolve())) {
  return { circuit: new RedisCircuit(client as unknown as WatchedClient, { recover, retryAfterMs: 60_000 }), recover };
}

describe("RedisCircuit", () => {
  it("lets commands through while the connection is ready, and skips Redis at once after a failure", async () => {
    const client = new FakeClient();
    const { circuit } = circuitOn(client);
    await expect(circuit.run(() => Promise.resolve("PONG"))).resolves.toBe("PONG");
    await expect(circuit.run(() => Promise.reject(new Error("Command timed out")))).rejects.toThrow("Command timed out");
    const command = jest.fn(() => Promise.resolve("never sent"));
    await expect(circuit.run(command)).rejects.toBeInstanceOf(RedisUnavailableError);
    expect(command).not.toHaveBeenCalled();
    expect(circuit.available).toBe(false);
    circuit.stop();
  });

  it("is unavailable while the client is not connected, and recovers (running the repair first) when it is ready again", async () => {
    const client = new FakeClient();
    const { circuit, recover } = circuitOn(client);
    const recovered = jest.fn();
    circuit.onRecovered(recovered);
    client.status = "reconnecting";
    client.emit("close");
    expect(circuit.available).toBe(false);
    client.status = "ready";
    // Ready alone is not enough: the repair must have run before anything uses Redis again.
    expect(circuit.available).toBe(false);
    client.emit("ready");
    await new Promise((resolve) => setImmediate(resolve));
    expect(recover).toHaveBeenCalledTimes(1);
    expect(recovered).toHaveBeenCalledTimes(1);
    expect(circuit.available).toBe(true);
    circuit.stop();
  });

  it("stays open when the repair fails", async () => {
    const client = new FakeClient();
    const { circuit } = circuitOn(client, jest.fn(() => Promise.reject(new Error("Command timed out"))));
    circuit.trip();
    client.emit("ready");
    await new Promise((resolve) => setImmediate(resolve));
    expect(circuit.available).toBe(false);
    circuit.stop();
  });
});

describe("guardSharedCache", () => {
  function guarded() {
    const client = new FakeClient();
    const store = new Map<string, unknown>();
    let failing = false;
    const attempt = <T>(work: () => T): Promise<T> => (failing ? Promise.reject(new Error("Command timed out")) : Promise.resolve(work()));
    const cleaned: Array<string | string[] | undefined> = [];
    const cacher: GuardedCacher = {
      connected: true,
      get: (key) => attempt(() => store.get(key) ?? null),
      set: (key, data) => attempt(() => store.set(key, data)),
      del: (key) => attempt(() => store.delete(String(key))),
      clean: (match) =>
        attempt(() => {
          cleaned.push(match);
          store.clear();
        }),
      lock: () => attempt(() => () => Promise.resolve()),
    };
    const circuit = guardSharedCache(cacher, client as unknown as WatchedClient);
    return { client, store, cacher, circuit, cleaned, fail: (value: boolean) => (failing = value) };
  }

  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it("answers a miss instead of failing, and tells Moleculer's middleware to call the action itself while Redis is out", async () => {
    const { cacher, circuit, fail } = guarded();
    fail(true);
    await expect(cacher.get("media.get:a")).resolves.toBeNull();
    expect(cacher.connected).toBe(false);
    await expect(cacher.set("media.get:a", { title: "x" })).resolves.toBeUndefined();
    circuit.stop();
  });

  it("empties the whole cache on recovery after a clean was missed, before the cache is used again", async () => {
    const { client, store, cacher, circuit, cleaned, fail } = guarded();
    store.set("media.get:a", { title: "old" });
    fail(true);
    await cacher.clean("media.get:a*");
    fail(false);
    expect(store.has("media.get:a")).toBe(true);
    client.emit("ready");
    await settle();
    expect(cleaned).toEqual(["*"]);
    expect(store.size).toBe(0);
    expect(cacher.connected).toBe(true);
    circuit.stop();
  });

  it("keeps the cache after an outage in which only reads failed", async () => {
    const { client, store, cacher, circuit, cleaned, fail } = guarded();
    store.set("media.get:a", { title: "current" });
    fail(true);
    await cacher.get("media.get:a");
    fail(false);
    client.emit("ready");
    await settle();
    expect(cleaned).toEqual([]);
    expect(await cacher.get("media.get:a")).toEqual({ title: "current" });
    circuit.stop();
  });
});

describe("ConnectionState", () => {
  async function* reports(...types: string[]) {
    for (const type of types) yield { type };
  }

  it("follows the client's reports: down from a disconnect until the reconnect, telling listeners when it is lost", async () => {
    const state = new ConnectionState();
    const lost = jest.fn();
    state.onLost(lost);
    await state.follow(reports("disconnect", "reconnecting"));
    expect(state.connected).toBe(false);
    expect(lost).toHaveBeenCalledTimes(1);
    await state.follow(reports("reconnect", "update"));
    expect(state.connected).toBe(true);
  });
});

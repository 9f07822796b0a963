import { EventEmitter } from "node:events";
import { RedisCircuit, RedisUnavailableError } from "../../lib/cache/redis-circuit";
import type { WatchedClient } from "../../lib/cache/redis-circuit";
import { guardSharedCache } from "../../lib/cache/shared-cache-guard";
import type { GuardedCacher } from "../../lib/cache/shared-cache-guard";
import { ConnectionState } from "../../lib/transport/connection-state";

class FakeClient extends EventEmitter {
  status = "ready";
  disconnect(): void {
    this.status = "end";
  }
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
      close: () => Promise.resolve(),
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

describe("guardSharedCache's log of an outage", () => {
  function guardedWithLog() {
    const client = new FakeClient();
    // What Moleculer's Redis cacher does with every error the client reports.
    const perErrorLog = jest.fn();
    client.on("error", perErrorLog);
    const logged: string[] = [];
    const cacher: GuardedCacher = {
      connected: true,
      get: () => Promise.reject(new Error("Command timed out")),
      set: () => Promise.reject(new Error("Command timed out")),
      del: () => Promise.reject(new Error("Command timed out")),
      // As Moleculer's cacher does: its logger, as it is when the call is made, hears of the failure first.
      clean(match) {
        const error = new Error("Command timed out");
        this.logger?.error(`Error occured while deleting keys '${String(match)}' from node.`, error);
        return Promise.reject(error);
      },
      lock: () => Promise.resolve(() => Promise.resolve()),
      close: () => (client.status === "ready" ? Promise.resolve("OK") : Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false"))),
      logger: {
        error: (message) => logged.push(`error: ${message}`),
        info: (message) => logged.push(`info: ${message}`),
        debug: (message) => logged.push(`debug: ${message}`),
      },
    };
    const circuit = guardSharedCache(cacher, client as unknown as WatchedClient);
    return { client, cacher, circuit, logged, perErrorLog };
  }

  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it("says once that Redis is gone, with why, whatever the reconnection attempts and calls in between, and once that it is back", async () => {
    const { client, cacher, circuit, logged, perErrorLog } = guardedWithLog();
    client.status = "reconnecting";
    client.emit("error", new Error("connect ECONNREFUSED 127.0.0.1:6379"));
    for (let attempt = 0; attempt < 10; attempt += 1) {
      client.emit("error", new Error("connect ECONNREFUSED 127.0.0.1:6379"));
      await cacher.get("media.get:a");
      await cacher.set("media.get:a", { title: "x" });
    }
    expect(perErrorLog).not.toHaveBeenCalled();
    expect(logged).toEqual(["error: The shared cache (Redis) is unavailable (connect ECONNREFUSED 127.0.0.1:6379): going on without it until it answers again"]);

    client.status = "ready";
    client.emit("ready");
    await settle();
    expect(logged).toHaveLength(2);
    expect(logged[1]).toMatch(/^info: The shared cache \(Redis\) is available again after \d+ s$/);

    // A second outage is a second pair, starting with the failure that opened it.
    await cacher.get("media.get:a");
    client.emit("error", new Error("connect ECONNREFUSED 127.0.0.1:6379"));
    expect(logged).toHaveLength(3);
    expect(logged[2]).toBe("error: The shared cache (Redis) is unavailable (Command timed out): going on without it until it answers again");
    circuit.stop();
  });

  it("reports the cacher's failed cleans at debug level, the outage they open once, and its other errors as they are", async () => {
    const { cacher, circuit, logged } = guardedWithLog();
    await cacher.clean("media.get:a*");
    await cacher.clean("media.get:b*");
    cacher.logger?.error("Redis result parse error.");
    expect(logged).toEqual([
      "debug: Error occured while deleting keys 'media.get:a*' from node.",
      "error: The shared cache (Redis) is unavailable (Command timed out): going on without it until it answers again",
      "error: Redis result parse error.",
    ]);
    circuit.stop();
  });

  it("logs nothing while Redis stays up", async () => {
    const { client, circuit, logged } = guardedWithLog();
    client.emit("ready");
    await settle();
    expect(logged).toEqual([]);
    circuit.stop();
  });

  it("ends the connection when closed while Redis is out of reach, instead of failing and leaving it reconnecting", async () => {
    const { client, cacher, logged } = guardedWithLog();
    client.status = "reconnecting";
    client.emit("close");
    await expect(cacher.close()).resolves.toBeUndefined();
    expect(client.status).toBe("end");
    // Stopping is not an outage: nothing more is reported once closed.
    client.emit("error", new Error("connect ECONNREFUSED 127.0.0.1:6379"));
    expect(logged).toHaveLength(1);
  });

  it("quits politely when Redis is there", async () => {
    const { client, cacher } = guardedWithLog();
    await expect(cacher.close()).resolves.toBeUndefined();
    expect(client.status).toBe("end");
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

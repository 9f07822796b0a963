import { EventEmitter } from "node:events";
import { RedisCircuit, RedisUnavailableError } from "../../lib/cache/redis-circuit";
import type { WatchedClient } from "../../lib/cache/redis-circuit";
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

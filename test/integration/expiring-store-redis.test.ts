/**
 * The Redis expiring store behind upload outcomes: a write is not lost because this process stalled past the
 * command timeout while Redis answered in time, and a Redis that is down still fails it at once.
 */
import type { Redis } from "ioredis";
import { RedisCircuit } from "../../lib/cache/redis-circuit";
import { RedisExpiringStore } from "../../lib/expiring-store";
import { createRedisClient } from "../../lib/runtime";
import { startRedis } from "../../scripts/services";
import type { RedisServer } from "../../scripts/services";

let redis: RedisServer;
const clients: { client: Redis; circuit: RedisCircuit }[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 60_000);

afterAll(async () => {
  for (const { client, circuit } of clients) {
    circuit.stop();
    client.disconnect();
  }
  await redis?.dispose();
});

async function connectedStore(options: { retryWhileConnected?: boolean }): Promise<{ store: RedisExpiringStore; circuit: RedisCircuit }> {
  const client = createRedisClient(redis.url);
  client.on("error", () => undefined);
  const circuit = new RedisCircuit(client);
  clients.push({ client, circuit });
  if (client.status !== "ready") await new Promise((resolve) => client.once("ready", resolve));
  return { store: new RedisExpiringStore(client, "test:outcome:", circuit, options), circuit };
}

/** Blocks this process's event loop past the command timeout, as a long garbage collection would. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

test("a write sent just before the process stalls past the command timeout is kept, and read back", async () => {
  const { store, circuit } = await connectedStore({ retryWhileConnected: true });
  const written = store.remember("upload-1", "media-1", 60_000);
  stall(800);
  await expect(written).resolves.toBeUndefined();
  // The stalled command still tripped the circuit; the value is read past it all the same.
  expect(circuit.available).toBe(false);
  await expect(store.recall("upload-1")).resolves.toBe("media-1");
});

test("without retrying, the same stall fails the write although Redis answered (why outcomes retry)", async () => {
  const { store } = await connectedStore({});
  const written = store.remember("upload-2", "media-2", 60_000);
  stall(800);
  await expect(written).rejects.toThrow("Command timed out");
});

test("with Redis down, the write fails with an error the caller can report, rather than waiting", async () => {
  const { store } = await connectedStore({ retryWhileConnected: true });
  await redis.stop();
  try {
    await expect(store.remember("upload-3", "media-3", 60_000)).rejects.toThrow(/unavailable|writeable|closed/i);
  } finally {
    await redis.start();
  }
});

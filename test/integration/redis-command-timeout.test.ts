/**
 * A node's Redis commands time out after 500 ms, judged after the replies already received: a command Redis answered
 * while this process stalled past the timeout (a long garbage collection) succeeds and trips nothing, while a Redis
 * that hangs still fails it, and one that is down fails it at once. Shown on the store behind upload outcomes.
 */
import type { Redis } from "ioredis";
import { RedisCircuit } from "../../lib/cache/redis-circuit";
import { RedisExpiringStore } from "../../lib/expiring-store";
import { createRedisClient } from "../../lib/runtime";
import { startRedis } from "../../scripts/services";
import type { RedisServer } from "../../scripts/services";
import { startTcpProxy } from "../support/tcp-proxy";
import type { TcpProxy } from "../support/tcp-proxy";

let redis: RedisServer;
let proxy: TcpProxy;
const clients: { client: Redis; circuit: RedisCircuit }[] = [];

beforeAll(async () => {
  redis = await startRedis();
  proxy = await startTcpProxy(redis.port);
}, 60_000);

afterEach(() => {
  proxy.restore();
});

afterAll(async () => {
  for (const { client, circuit } of clients) {
    circuit.stop();
    client.disconnect();
  }
  await proxy?.close();
  await redis?.dispose();
});

async function connectedStore(url: string): Promise<{ store: RedisExpiringStore; circuit: RedisCircuit }> {
  const client = createRedisClient(url);
  client.on("error", () => undefined);
  const circuit = new RedisCircuit(client);
  clients.push({ client, circuit });
  if (client.status !== "ready") await new Promise((resolve) => client.once("ready", resolve));
  return { store: new RedisExpiringStore(client, "test:outcome:", circuit), circuit };
}

/** Blocks this process's event loop past the command timeout, as a long garbage collection would. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

test("a write Redis answered while the process stalled past the command timeout succeeds, and the circuit stays closed", async () => {
  const { store, circuit } = await connectedStore(redis.url);
  const written = store.remember("upload-1", "media-1", 60_000);
  stall(800);
  await expect(written).resolves.toBeUndefined();
  expect(circuit.available).toBe(true);
  await expect(store.recall("upload-1")).resolves.toBe("media-1");
});

test("with Redis hanging, the write still fails with a timeout, and the circuit opens", async () => {
  const { store, circuit } = await connectedStore(proxy.url("redis"));
  proxy.hang();
  await expect(store.remember("upload-2", "media-2", 60_000)).rejects.toThrow("Command timed out");
  expect(circuit.available).toBe(false);
});

test("with Redis down, the write fails with an error the caller can report, rather than waiting", async () => {
  const { store } = await connectedStore(redis.url);
  await redis.stop();
  try {
    await expect(store.remember("upload-3", "media-3", 60_000)).rejects.toThrow(/unavailable|writeable|closed/i);
  } finally {
    await redis.start();
  }
});

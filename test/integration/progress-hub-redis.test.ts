/**
 * The progress hub's Redis adapter when Redis does not answer: closing the hub (a node stopping while Redis hangs)
 * leaves no command rejected unheard, which would end the node's process with an error instead of a clean exit.
 */
import http from "node:http";
import { createRedisClient } from "../../lib/runtime";
import { ProgressHub } from "../../lib/realtime/progress-hub";
import { startRedis } from "../../scripts/services";
import type { RedisServer } from "../../scripts/services";
import { startTcpProxy } from "../support/tcp-proxy";
import type { TcpProxy } from "../support/tcp-proxy";

let redis: RedisServer;
let proxy: TcpProxy;
const unheard: unknown[] = [];
const recordUnheard = (reason: unknown) => unheard.push(reason);

beforeAll(async () => {
  redis = await startRedis();
  proxy = await startTcpProxy(redis.port);
  process.on("unhandledRejection", recordUnheard);
}, 60_000);

beforeEach(() => {
  unheard.length = 0;
});

afterAll(async () => {
  process.off("unhandledRejection", recordUnheard);
  await proxy?.close();
  await redis?.dispose();
});

async function hubThroughProxy(): Promise<{ hub: ProgressHub; close: () => Promise<void> }> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const shared = createRedisClient(proxy.url("redis"));
  shared.on("error", () => undefined);
  const hub = new ProgressHub(server, {
    sessions: { authenticate: () => Promise.resolve(undefined), endOf: () => Promise.resolve(undefined) },
    isAllowedOrigin: () => true,
    redis: shared,
  });
  return {
    hub,
    close: async () => {
      await hub.close();
      shared.disconnect();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

test("closed while Redis hangs, with its subscriptions and a progress update still queued: nothing is rejected unheard", async () => {
  proxy.hang();
  try {
    const { hub, close } = await hubThroughProxy();
    await settle();
    hub.uploadProgress("01ARZ3NDEKTSV4RRFFQ69G5FAV", { uploadId: "u1", offset: 10, size: 100 });
    await close();
    await settle();
  } finally {
    proxy.restore();
  }
  expect(unheard.map(String)).toEqual([]);
});

test("closed once connected: nothing is rejected unheard either", async () => {
  const { hub, close } = await hubThroughProxy();
  await settle();
  hub.uploadProgress("01ARZ3NDEKTSV4RRFFQ69G5FAV", { uploadId: "u2", offset: 10, size: 100 });
  await close();
  await settle();
  expect(unheard.map(String)).toEqual([]);
});

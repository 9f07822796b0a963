/**
 * A private redis-server on a free 127.0.0.1 port, without persistence, in its own temporary directory.
 *
 * API: startRedis({ baseDir? }) -> { url, port, dir, start(), stop(), isRunning(), dispose() }
 *   stop()/start() restart the same server on the same port (empty again: nothing is persisted);
 *   dispose() stops it and deletes its directory.
 */
import path from "node:path";
import Redis from "ioredis";
import { binaryPath } from "./binaries";
import { ServerProcess, startPrivateServer } from "./processes";
import type { PrivateServer, PrivateServerOptions } from "./processes";

export type RedisServer = PrivateServer;
export type RedisOptions = PrivateServerOptions;

/** PING, then checks that the answering server is our child and not whoever else had the port. */
async function probe(port: number, pid: number): Promise<void> {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    connectTimeout: 1000,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  client.on("error", () => {
    // reported through the rejected commands below
  });
  try {
    await client.connect();
    const pong = await client.ping();
    if (pong !== "PONG") throw new Error(`PING answered ${pong}`);
    const info = await client.info("server");
    const serverPid = /^process_id:(\d+)/m.exec(info)?.[1];
    if (Number(serverPid) !== pid) throw new Error(`port ${port} is served by process ${serverPid}, not ${pid}`);
  } finally {
    // After a failed connect the socket is gone, and disconnect() would leave a 2 s timer holding the
    // process open.
    if (client.status !== "end") client.disconnect();
  }
}

export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  return startPrivateServer("redis", "redis", options, (dir, port) =>
    new ServerProcess({
      label: "redis-server",
      command: binaryPath("redis-server"),
      args: () => [
        "--port", String(port()),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", dir,
        "--daemonize", "no",
        "--logfile", path.join(dir, "redis.log"),
      ],
      outputFile: path.join(dir, "redis.out"),
      logFiles: [path.join(dir, "redis.log")],
      probe: (pid) => probe(port(), pid),
      readyTimeoutMs: 15_000,
      stopTimeoutMs: 10_000,
    }),
  );
}

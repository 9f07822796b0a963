/**
 * A private nats-server with JetStream on a free 127.0.0.1 port, storing in its own temporary directory.
 *
 * API: startNats({ baseDir? }) -> { url, port, dir, start(), stop(), isRunning(), dispose() }
 *   stop()/start() restart the same server on the same port; JetStream data survives the restart.
 *   dispose() stops it and deletes its directory.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { connect } from "nats";
import { binaryPath } from "./binaries";
import { ServerProcess, startPrivateServer } from "./processes";
import type { PrivateServer, PrivateServerOptions } from "./processes";

export type NatsServer = PrivateServer;
export type NatsOptions = PrivateServerOptions;

/**
 * Connects, checks by server name that the answering server is ours and not whoever else had the
 * port, and asks JetStream for the account info, which fails until JetStream is up.
 */
async function probe(port: number, serverName: string): Promise<void> {
  const connection = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 1000 });
  try {
    const answering = connection.info?.server_name;
    if (answering !== serverName) throw new Error(`port ${port} is served by "${answering}", not "${serverName}"`);
    const manager = await connection.jetstreamManager({ timeout: 1000 });
    await manager.getAccountInfo();
  } finally {
    await connection.close();
  }
}

export async function startNats(options: NatsOptions = {}): Promise<NatsServer> {
  const serverName = `shoal-test-${randomBytes(6).toString("hex")}`;
  return startPrivateServer("nats", "nats", options, (dir, port) =>
    new ServerProcess({
      label: "nats-server",
      command: binaryPath("nats-server"),
      args: () => [
        "-a", "127.0.0.1",
        "-p", String(port()),
        "-n", serverName,
        "-js",
        "-sd", path.join(dir, "jetstream"),
        "-l", path.join(dir, "nats.log"),
      ],
      outputFile: path.join(dir, "nats.out"),
      logFiles: [path.join(dir, "nats.log")],
      probe: () => probe(port(), serverName),
      readyTimeoutMs: 15_000,
      stopTimeoutMs: 10_000,
    }),
  );
}

/**
 * A TCP proxy on a free 127.0.0.1 port in front of a server, for fault tests: it can cut the server off
 * (refuse new connections, destroy open ones), hang (accept, forward nothing), slow every chunk down, or
 * reset the open connections.
 *
 *   const proxy = await startTcpProxy(redis.port);
 *   proxy.url("redis")              // redis://127.0.0.1:<proxy port>
 *   proxy.cut(); proxy.restore();   // down, and back
 *   proxy.setDelay(500);            // each chunk, each way, arrives 500 ms late
 *   proxy.hang();                   // connections stay open, nothing gets through
 *   proxy.reset();                  // RST on every open connection; new ones are accepted
 *   proxy.connections, proxy.bytesFromClients   // what clients have tried to send through it, in any mode
 *   await proxy.close();
 */
import net from "node:net";

export type ProxyMode = "open" | "cut" | "hang";

export interface TcpProxy {
  readonly port: number;
  url(scheme: string): string;
  readonly mode: ProxyMode;
  /** Connections accepted so far, those cut at once included. */
  readonly connections: number;
  /** Bytes received from clients so far, those held back or dropped included. */
  readonly bytesFromClients: number;
  /** Refuses new connections and destroys the open ones. */
  cut(): void;
  /** Keeps accepting, but passes nothing on either way. */
  hang(): void;
  /** Lets everything through again (the delay stays as set). */
  restore(): void;
  /** Delays each chunk in each direction by this many milliseconds (0: none). */
  setDelay(ms: number): void;
  /** Resets (RST) every open connection; later connections are served. */
  reset(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  let mode: ProxyMode = "open";
  let delayMs = 0;
  let connections = 0;
  let bytesFromClients = 0;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();

  const forward = (from: net.Socket, to: net.Socket) => {
    from.on("data", (chunk: Buffer) => {
      if (mode === "hang") return;
      const send = () => {
        if (mode === "open" && !to.destroyed) to.write(chunk);
      };
      // Chunks stay in order: every chunk waits the same time.
      if (delayMs > 0) setTimeout(send, delayMs);
      else send();
    });
  };

  const server = net.createServer((client) => {
    connections++;
    if (mode === "cut") {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.on("data", (chunk: Buffer) => {
      bytesFromClients += chunk.length;
    });
    forward(client, upstream);
    forward(upstream, client);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  const destroyAll = (reset: boolean) => {
    for (const { client, upstream } of [...pairs]) {
      if (reset) client.resetAndDestroy();
      else client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };

  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    get connections() {
      return connections;
    },
    get bytesFromClients() {
      return bytesFromClients;
    },
    cut() {
      mode = "cut";
      destroyAll(false);
    },
    hang() {
      mode = "hang";
    },
    restore() {
      mode = "open";
    },
    setDelay(ms) {
      delayMs = ms;
    },
    reset() {
      destroyAll(true);
    },
    close: () =>
      new Promise<void>((resolve) => {
        destroyAll(false);
        server.close(() => resolve());
      }),
  };
}

import { randomInt } from "node:crypto";
import fs from "node:fs";
import net from "node:net";

/** Where the kernel picks ports for outgoing connections and `listen(0)` (Linux's default when it cannot be read). */
function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return { low: low as number, high: high as number };
  } catch {
    // not Linux
  }
  return { low: 32768, high: 60999 };
}

const SLICES = 8;

/**
 * The ports this process picks from: outside the ephemeral range, so that a server stopped for a while (a fault
 * test) finds its port still free when it starts again, instead of taken by some client's outgoing connection;
 * and one slice of them per test worker, so that two workers never pick the same port.
 */
function candidateRange(): { low: number; high: number } {
  const ephemeral = ephemeralRange();
  const [low, high] = ephemeral.low - 1 - 10_000 >= 2_000 ? [10_000, ephemeral.low - 1] : [ephemeral.high + 1, 65_535];
  const width = Math.floor((high - low + 1) / SLICES);
  const slice = Number(process.env.JEST_WORKER_ID ?? 0) % SLICES;
  return { low: low + slice * width, high: low + (slice + 1) * width - 1 };
}

const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed out before. Another
 * process may take it before the caller binds it, so launchers retry with a new port when their server reports
 * "address already in use".
 */
export async function freePort(): Promise<number> {
  const { low, high } = candidateRange();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = randomInt(low, high + 1);
    if (handedOut.has(port) || !(await canBind(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port found between ${low} and ${high}`);
}

/** Resolves when something accepts TCP connections on 127.0.0.1:port; rejects on refusal or timeout. */
export function canConnect(port: number, timeoutMs = 1000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to 127.0.0.1:${port} timed out`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

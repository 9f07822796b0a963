/**
 * One server under test for bench/upload.ts, in a process of its own so that the client does not share
 * its event loop, and so that its memory can be watched on its own.
 *
 *   BENCH_ROLE=shoal  A Shoal node configured by the environment, like server.ts (PORT defaults to 0,
 *                     LOG_LEVEL to warn).
 *   BENCH_ROLE=raw    A bare node:http server: every POST body is piped to a new file in BENCH_RAW_DIR
 *                     (with `?fsync=1`, flushed to disk before the file is closed), then answered
 *                     201 {"bytes","file"}. The file stays; the parent deletes it.
 *
 * Both sample process.memoryUsage() every SAMPLE_INTERVAL_MS and watch their GC pauses and main thread
 * (bench/upload-window.ts); the parent starts a window with {type:"reset"} and reads it with {type:"report"}
 * over the IPC channel. The child sends
 * {type:"ready", port} once listening, and stops on SIGTERM, SIGINT or when the IPC channel closes.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { exitWithError, serveUntilStopped, stopOnce } from "./harness/common";
import type { FromServer } from "./upload-protocol";
import { watchWindow } from "./upload-window";

function send(message: FromServer): void {
  process.send?.(message);
}

async function runShoal(): Promise<void> {
  // Loaded here, not at the top: the raw server stays a bare Node process. With all of Shoal loaded (a heap
  // several times larger), it ran about 30 % slower after an idle second, as its garbage collections grew.
  const { parseSettings } = await import("../config/settings");
  const { createNode } = await import("../node");
  const settings = parseSettings({ PORT: "0", LOG_LEVEL: "warn", ...process.env });
  const node = createNode(settings);
  stopOnce(() => node.stop(), "disconnect");
  await node.start();
  if (node.port === undefined) throw new Error("the node does not run the api service (check SERVICES)");
  send({ type: "ready", port: node.port });
}

async function runRaw(): Promise<void> {
  const dir = process.env.BENCH_RAW_DIR;
  if (dir === undefined || dir === "") throw new Error("BENCH_RAW_DIR is required for BENCH_ROLE=raw");
  let files = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://raw");
    if (req.method !== "POST") {
      res.writeHead(404).end();
      return;
    }
    const file = path.join(dir, `upload-${++files}.bin`);
    const output = fs.createWriteStream(file, { flags: "wx", flush: url.searchParams.get("fsync") === "1" });
    pipeline(req, output).then(
      () => {
        const body = JSON.stringify({ bytes: output.bytesWritten, file });
        res.writeHead(201, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }).end(body);
      },
      (error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
        res.end(error instanceof Error ? error.message : String(error));
      },
    );
  });
  const port = await serveUntilStopped(server, "disconnect", 0, "127.0.0.1");
  send({ type: "ready", port });
}

const role = process.env.BENCH_ROLE;
const run = role === "shoal" ? runShoal : role === "raw" ? runRaw : undefined;
if (run === undefined || process.send === undefined) {
  console.error(`bench/upload-server.ts is started by bench/upload.ts with an IPC channel and BENCH_ROLE "shoal" or "raw" (got ${JSON.stringify(role)})`);
  process.exit(2);
}
watchWindow();
run().catch(exitWithError);

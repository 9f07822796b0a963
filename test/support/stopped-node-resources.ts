/**
 * Run as a child process (`node --import tsx`), with a data directory as the first argument.
 *
 * Alone, it starts an embedded node there, answers one request, stops it, and prints what still keeps the process
 * alive (JSON, on the last line) once the events already under way have run.
 *
 * With a NATS URL as the second argument, it starts a cluster node whose NATS is down, stops it while it waits,
 * and prints `stopped`.
 *
 * Either way the process then ends by itself, without process.exit.
 */
import { parseSettings } from "../../config/settings";
import { createNode } from "../../node";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function stoppedWhileServing(dataDir: string): Promise<void> {
  const node = createNode(parseSettings({ SHOAL_DATA_DIR: dataDir, PORT: "0", LOG_LEVEL: "warn" }));
  await node.start();
  await (await fetch(`http://127.0.0.1:${node.port}/api/health`)).text();
  await node.stop();
  // Sockets closed by the stop report it in the next turns of the event loop; a timer would still be there.
  for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
  const stdio = new Set(["PipeWrap", "TTYWrap", "FSReqCallback"]);
  process.stdout.write(`${JSON.stringify(process.getActiveResourcesInfo().filter((name) => !stdio.has(name)))}\n`);
}

async function stoppedWhileWaitingForNats(dataDir: string, natsUrl: string): Promise<void> {
  const settings = parseSettings({
    SHOAL_MODE: "cluster",
    SERVICES: "users",
    SHOAL_SECRET: "a-secret-of-at-least-thirty-two-characters",
    NATS_URL: natsUrl,
    MYSQL_PRIMARY_URL: "mysql://root@127.0.0.1:1/shoal",
    REDIS_URL: "redis://127.0.0.1:1",
    S3_BUCKET: "shoal",
    S3_ENDPOINT: "http://127.0.0.1:1",
    SHOAL_DATA_DIR: dataDir,
    LOG_LEVEL: "fatal",
  });
  const node = createNode(settings);
  node.start().catch(() => undefined);
  // Long enough for the first connect to have failed, which leaves a retry due.
  await pause(1000);
  await node.stop();
  process.stdout.write("stopped\n");
}

const [dataDir, natsUrl] = process.argv.slice(2) as [string, string | undefined];
void (natsUrl === undefined ? stoppedWhileServing(dataDir) : stoppedWhileWaitingForNats(dataDir, natsUrl));

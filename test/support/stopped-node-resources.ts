/**
 * Run as a child process (`node --import tsx`): starts an embedded node in the data directory given as the first
 * argument, answers one request, stops it, and prints what still keeps the process alive (JSON, on the last line)
 * once the events already under way have run. The process then ends by itself, without process.exit.
 */
import { parseSettings } from "../../config/settings";
import { createNode } from "../../node";

async function main(dataDir: string): Promise<void> {
  const node = createNode(parseSettings({ SHOAL_DATA_DIR: dataDir, PORT: "0", LOG_LEVEL: "warn" }));
  await node.start();
  await (await fetch(`http://127.0.0.1:${node.port}/api/health`)).text();
  await node.stop();
  // Sockets closed by the stop report it in the next turns of the event loop; a timer would still be there.
  for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
  const stdio = new Set(["PipeWrap", "TTYWrap", "FSReqCallback"]);
  process.stdout.write(`${JSON.stringify(process.getActiveResourcesInfo().filter((name) => !stdio.has(name)))}\n`);
}

void main(process.argv[2] as string);

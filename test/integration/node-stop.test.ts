/**
 * A stopped node holds nothing that keeps its process alive (no timer, no server, no connection): a process that
 * embeds one, or a test worker that ran one, ends as soon as its own work is done.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startNats } from "../../scripts/services";

const ROOT = path.resolve(__dirname, "../..");

interface ChildEnd {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs test/support/stopped-node-resources.ts; `onLine` sees each line it prints. */
function runStoppedNode(args: string[], onLine: (line: string) => void = () => undefined): Promise<ChildEnd> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ["--import", "tsx", "test/support/stopped-node-resources.ts", ...args], { cwd: ROOT, timeout: 90_000 }, (_error, stdout, stderr) =>
      resolve({ code: child.exitCode, stdout, stderr }),
    );
    child.stdout?.on("data", (chunk: Buffer) => chunk.toString().split("\n").filter(Boolean).forEach(onLine));
  });
}

let dataDir: string;

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-node-stop-"));
});

afterEach(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("after stop, nothing of the node keeps the process alive, and the process ends by itself with code 0", async () => {
  const { code, stdout, stderr } = await runStoppedNode([dataDir]);
  const lastLine = stdout.trim().split("\n").at(-1) ?? "";
  expect({ code, stillActive: lastLine.startsWith("[") ? (JSON.parse(lastLine) as string[]) : `no report; stderr: ${stderr}` }).toEqual({ code: 0, stillActive: [] });
}, 150_000);

test("a node stopped while it waits for NATS does not connect once NATS is back, and its process ends by itself", async () => {
  const nats = await startNats();
  try {
    await nats.stop();
    const { code, stdout } = await runStoppedNode([dataDir, nats.url], (line) => {
      if (line === "stopped") void nats.start();
    });
    expect({ code, stdout }).toEqual({ code: 0, stdout: "stopped\n" });
    expect(nats.isRunning()).toBe(true);
  } finally {
    await nats.dispose();
  }
}, 150_000);

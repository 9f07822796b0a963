/**
 * A stopped node holds nothing that keeps its process alive (no timer, no server, no connection): a process that
 * embeds one, or a test worker that ran one, ends as soon as its own work is done.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const ROOT = path.resolve(__dirname, "../..");

test("after stop, nothing of the node keeps the process alive, and the process ends by itself with code 0", async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-node-stop-"));
  try {
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ["--import", "tsx", "test/support/stopped-node-resources.ts", dataDir], { cwd: ROOT, timeout: 120_000 }, (_error, out, err) =>
        resolve({ code: child.exitCode, stdout: out, stderr: err }),
      );
    });
    const lastLine = stdout.trim().split("\n").at(-1) ?? "";
    expect({ code, stillActive: lastLine.startsWith("[") ? (JSON.parse(lastLine) as string[]) : `no report; stderr: ${stderr}` }).toEqual({ code: 0, stillActive: [] });
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}, 150_000);

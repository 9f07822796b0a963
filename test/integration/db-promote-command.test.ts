/**
 * The `db:promote` command line: what it answers when called wrongly, before it touches anything.
 * (The promotion itself: db-promotion.test.ts and primary-failover-cluster.test.ts.)
 */
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";

const PROJECT_ROOT = path.resolve(__dirname, "../..");

function dbPromote(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/db-promote.ts", ...args], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: os.homedir(), TMPDIR: os.tmpdir(), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

it("names what is missing or unknown on the command line, with the usage, and exits 2", async () => {
  const missing = await dbPromote([]);
  expect(missing).toMatchObject({ code: 2, stdout: "" });
  expect(missing.stderr.trim()).toBe(
    "db:promote: --database is required (usage: npm run db:promote -- --database <membership|media|site> [--replica <url or host:port>] [--force])",
  );
  const unknown = await dbPromote(["--database", "media", "--replicas", "x"]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/^db:promote: Unknown option '--replicas'/);
}, 60_000);

it("refuses to run in embedded mode, which has no replicas", async () => {
  const embedded = await dbPromote(["--database", "media"], { SHOAL_MODE: "embedded" });
  expect(embedded).toMatchObject({ code: 1, stdout: "" });
  expect(embedded.stderr.trim()).toBe("db:promote: promotion needs SHOAL_MODE=cluster: embedded mode has no replicas");
}, 60_000);

it("refuses a malformed setting with exit code 2", async () => {
  const malformed = await dbPromote(["--database", "media"], { DB_FAILOVER_BLOCK_SECONDS: "soon" });
  expect(malformed.code).toBe(2);
  expect(malformed.stderr).toMatch(/DB_FAILOVER_BLOCK_SECONDS/);
}, 60_000);

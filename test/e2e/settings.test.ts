import { spawn } from "node:child_process";
import path from "node:path";

const root = path.resolve(__dirname, "../..");

/** Runs the real entry point with only the given environment (plus PATH) and collects what it prints. */
function runServer(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "server.ts"], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test.each<[Record<string, string>, string]>([
  [{ SHOAL_MODE: "cluster", MYSQL_REPLICA_URLS: "mysql//x" }, 'MYSQL_REPLICA_URLS: "mysql//x" is not a mysql:// URL'],
  [{ SHOAL_MODE: "sideways" }, "SHOAL_MODE: "],
  [{ PORT: "eighty" }, 'PORT: "eighty"'],
  [{ SERVICES: "api,uploader" }, 'SERVICES: unknown service "uploader"'],
  [
    { SHOAL_MODE: "cluster", MYSQL_PRIMARY_URL: "mysql://u:p@127.0.0.1/", REDIS_URL: "redis://127.0.0.1", S3_BUCKET: "b", SHOAL_SECRET: "x".repeat(32) },
    "NATS_URL: required when SHOAL_MODE=cluster",
  ],
])("invalid settings %j stop the node with one line and a non-zero exit, before anything listens", async (env, expected) => {
  const result = await runServer({ ...env, PORT: env.PORT ?? "0" });
  expect(result.code).toBe(2);
  expect(result.stdout).toBe("");
  const lines = result.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(expected);
  expect(result.stderr).not.toMatch(/\bat .*\.ts:\d+/);
});

/**
 * `npm run cluster -- up|status|down` as an operator runs it: the command leaves the cluster running,
 * HAProxy on the chosen port spreads requests over both api nodes, and `down` stops exactly what `up`
 * started.
 *
 * The nodes run from the TypeScript sources (`up --source`) rather than from dist/, so that the test
 * needs no build; `node dist/server.js` and `node --import tsx server.ts` run the same code.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startCluster } from "../../scripts/cluster/launcher";
import { clusterStatus, isRunning, readState } from "../../scripts/cluster/state";
import type { RecordedProcess } from "../../scripts/cluster/state";
import { ALL_BINARIES, findBinary } from "../../scripts/services/binaries";
import { freePort } from "../../scripts/services/ports";
import { HttpClient, memberCredentials } from "../support/http-client";

const ROOT = path.resolve(__dirname, "../..");

interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function clusterCommand(args: readonly string[], timeoutMs = 240_000): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/cluster.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`cluster ${args.join(" ")} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("npm run cluster", () => {
  let dir: string;
  let port: number;
  let url: string;

  beforeAll(async () => {
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-cluster-"));
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    const state = readState(dir);
    if (state !== undefined && isRunning(state.launcher)) await clusterCommand(["down", "--dir", dir]);
    await fs.promises.rm(dir, { recursive: true, force: true });
  }, 120_000);

  it("stops with one line naming the Debian package when a binary is missing", async () => {
    const withoutHaproxy = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-bin-"));
    try {
      for (const name of ALL_BINARIES) await fs.promises.symlink(findBinary(name) as string, path.join(withoutHaproxy, name));
      const starting = startCluster({ dir: path.join(withoutHaproxy, "cluster"), port, binarySearchDirs: [withoutHaproxy] });
      await expect(starting).rejects.toThrow(/^haproxy not found: apt-get install haproxy$/);
      expect(fs.existsSync(path.join(withoutHaproxy, "cluster"))).toBe(false);
    } finally {
      await fs.promises.rm(withoutHaproxy, { recursive: true, force: true });
    }
  });

  it("`up` returns with every process ready and the URL printed", async () => {
    const up = await clusterCommand(["up", "--dir", dir, "--port", String(port), "--source"]);
    expect({ code: up.code, stderr: up.stderr }).toEqual({ code: 0, stderr: "" });
    expect(up.stdout).toContain(`Shoal runs on ${url}`);

    const state = readState(dir);
    expect(state?.phase).toBe("ready");
    const rows = await clusterStatus(state as NonNullable<typeof state>);
    expect(rows.map((row) => `${row.name} ${row.readiness}`).sort()).toEqual(
      [
        "launcher", "s3",
        "mariadb-primary", "mariadb-replica-1", "mariadb-replica-2", "redis", "nats",
        "api-1", "api-2", "core-1", "processing-1", "processing-2", "haproxy",
      ].map((name) => `${name} ready`).sort(),
    );

    const status = await clusterCommand(["status", "--dir", dir]);
    expect(status.code).toBe(0);
    for (const row of rows) expect(status.stdout).toMatch(new RegExp(`^${row.name}\\s+${row.role}\\s+${row.pid}\\s+ready$`, "m"));
  }, 300_000);

  it("serves sign-up and health through HAProxy, spread over both api nodes", async () => {
    const client = new HttpClient(url, { origin: url });
    const health = await client.get<{ status: string }>("/api/health");
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("ok");

    const signedUp = await client.post<{ user: { username: string } }>("/api/auth/register", memberCredentials("cluster"));
    expect(signedUp.status).toBe(201);
    const me = await client.get<{ user: { username: string } }>("/api/users/me");
    expect(me.body.user.username).toBe(signedUp.body.user.username);

    const answeredBy = new Set<string | null>();
    for (let request = 0; request < 6; request++) {
      const response = await fetch(`${url}/api/health/live`);
      expect(response.status).toBe(200);
      answeredBy.add(response.headers.get("x-shoal-backend"));
    }
    expect([...answeredBy].sort()).toEqual(["api-1", "api-2"]);

    // The cookie HAProxy sets keeps a client on its node (what socket.io's long-polling needs).
    for (let request = 0; request < 4; request++) {
      const response = await fetch(`${url}/api/health/live`, { headers: { cookie: "SHOAL_NODE=api-2" } });
      expect(response.headers.get("x-shoal-backend")).toBe("api-2");
    }
  }, 60_000);

  it("`down` stops every process `up` started, and nothing else", async () => {
    const state = readState(dir);
    if (state === undefined) throw new Error("no cluster state");
    const started: RecordedProcess[] = [state.launcher, ...state.processes];
    expect(started.every(isRunning)).toBe(true);

    // Another node process on the machine, as a developer's own `npm start` would be.
    const bystander = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    try {
      const down = await clusterCommand(["down", "--dir", dir], 120_000);
      expect({ code: down.code, stderr: down.stderr }).toEqual({ code: 0, stderr: "" });
      expect(started.filter(isRunning).map((each) => each.name)).toEqual([]);
      expect(bystander.exitCode).toBeNull();
      expect(bystander.signalCode).toBeNull();

      const status = await clusterCommand(["status", "--dir", dir]);
      expect(status.code).toBe(1);
      expect(status.stdout).toMatch(/^haproxy\s+load balancer\s+\d+\s+exited$/m);
    } finally {
      bystander.kill("SIGKILL");
    }
  }, 150_000);
});

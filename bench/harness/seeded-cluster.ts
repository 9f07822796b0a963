/**
 * The start of bench/feed.ts and bench/stats.ts: a temporary directory, private MariaDB primary + 1 replica,
 * Redis, NATS and S3 (scripts/services), a first Shoal node (SERVICES=api,users,media,site, cluster mode), which
 * runs the migrations, and then the 10,000 users and 100,000 items of bench/feed-seed.ts in Shoal's databases.
 * Everything started is added to the caller's Resources. The replica is not waited for: each benchmark seeds
 * more of its own first.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { MariaDbReplicationSet, TestServices } from "../../scripts/services";
import { envFor, startServices } from "../../scripts/services";
import { ITEMS, USERS, seedShoal } from "../feed-seed";
import { ShoalChild, waitForHealth } from "./children";
import type { Resources } from "./common";
import { progress } from "./common";

const START_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 15_000;

export interface StartedNode {
  readonly child: ShoalChild;
  readonly baseUrl: string;
  readonly port: number;
}

export interface SeededCluster {
  /** The run's temporary directory (removed with the resources). */
  readonly dir: string;
  readonly services: TestServices;
  readonly mariadb: MariaDbReplicationSet;
  /** The environment every node gets (the services' URLs, SERVICES, data directory, rate limits out of the way, `env`). */
  readonly shoalEnv: Record<string, string>;
  /** The node that ran the migrations. */
  readonly firstNode: StartedNode;
  readonly seeded: Awaited<ReturnType<typeof seedShoal>>;
  /**
   * Starts another node with `env` on top of shoalEnv and waits until /api/health is ok (a bare server,
   * BENCH_ROLE=raw, only until it listens); `scope` names it in progress lines (default the benchmark's).
   */
  startNode(label: string, env: Record<string, string>, options?: { nodeFlags?: readonly string[]; scope?: string }): Promise<StartedNode>;
}

export async function startSeededCluster(
  benchmark: string,
  resources: Resources,
  options: { readonly env?: Record<string, string>; readonly firstNode: { readonly label: string; readonly env: Record<string, string> } },
): Promise<SeededCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `shoal-bench-${benchmark}-`));
  resources.add(`directory ${dir}`, () => fs.promises.rm(dir, { recursive: true, force: true }));
  progress(benchmark, "starting private MariaDB primary + 1 replica, Redis, NATS, S3");
  const services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  resources.add("private services", () => services.stop());
  const mariadb = services.mariadb!;
  const shoalEnv = {
    ...envFor(services),
    SERVICES: "api,users,media,site",
    SHOAL_DATA_DIR: path.join(dir, "data"),
    LOG_LEVEL: "warn",
    // All load comes from one address: keep the per-address limit (still checked on every request) out of the way.
    RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000000",
    ...options.env,
  };
  const startNode: SeededCluster["startNode"] = async (label, env, { nodeFlags = [], scope = benchmark } = {}) => {
    const child = new ShoalChild(label, { ...shoalEnv, NODE_ID: `bench-${benchmark}-${label}`, BENCH_ROLE: "shoal", ...env }, { startTimeoutMs: START_TIMEOUT_MS, stopTimeoutMs: STOP_TIMEOUT_MS, nodeFlags });
    resources.add(label, () => child.stop());
    const { port } = await child.ready;
    const baseUrl = `http://127.0.0.1:${port}`;
    // A bare server answers every path with the same bytes: listening is all it needs.
    if (env.BENCH_ROLE !== "raw") await waitForHealth(scope, label, baseUrl, START_TIMEOUT_MS, 30_000);
    return { child, baseUrl, port };
  };

  progress(benchmark, `starting node ${options.firstNode.label}: it runs the migrations`);
  const firstNode = await startNode(options.firstNode.label, options.firstNode.env);
  progress(benchmark, `seeding Shoal's databases (${USERS.toLocaleString("en-US")} users, ${ITEMS.toLocaleString("en-US")} items)`);
  const seeded = await seedShoal(mariadb);
  return { dir, services, mariadb, shoalEnv, firstNode, seeded, startNode };
}

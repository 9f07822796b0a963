/**
 * The load balancer's cost and what a second api node adds: `npm run bench:cluster` (see bench/README.md).
 *
 * Starts the cluster of `npm run cluster` (HAProxy in front of two api nodes, a core node, two workers,
 * MariaDB with two replicas, Redis, NATS, S3) from the sources, makes a public page of three ready photos,
 * and loads the cached public feed with wrk:
 *   (a) through HAProxy, both api nodes;   (b) through HAProxy, one api node (the other stopped);
 *   (c) that node directly, on its own port.
 * Goal: (b)/(c) at least 0.9 (the load balancer's cost). (a)/(b) is reported with what limits it: on a
 * 2-core machine both api nodes, HAProxy, wrk and the datastores share the same two cores.
 *
 * Environment: BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (3), BENCH_THREADS (2), BENCH_CONNECTIONS (32), BENCH_OUTPUT.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startCluster } from "../scripts/cluster/launcher";
import { freePort } from "../scripts/services/ports";
import { delay, numberFromEnv, outputFromEnv, PROJECT_ROOT, printWrittenTo, progress, registerAccount, round, runMain, startRun, writeReport } from "./harness/common";
import { loadRound } from "./harness/rounds";
import { describeWrk, runWrk } from "./harness/wrk";

const FEED_PATH = "/api/media?scope=public&limit=24";
const LB_COST_GOAL = 0.9;
const PHOTOS = ["exif_jpeg/orientation_1.jpg", "exif_jpeg/orientation_6.jpg", "image_formats/png_rgba_alpha.png"];

const options = {
  seconds: numberFromEnv("BENCH_SECONDS", 10),
  warmupSeconds: numberFromEnv("BENCH_WARMUP_SECONDS", 3, { allowZero: true }),
  threads: numberFromEnv("BENCH_THREADS", 2, { integer: true }),
  connections: numberFromEnv("BENCH_CONNECTIONS", 32, { integer: true }),
  output: outputFromEnv("cluster"),
};

async function publicPage(url: string): Promise<void> {
  const { token } = await registerAccount(url, `clusterbench${Date.now().toString(36)}`, "a sturdy horse battery 42");
  const headers = { Authorization: `Bearer ${token}` };
  for (const photo of PHOTOS) {
    const form = new FormData();
    form.append("file", new Blob([fs.readFileSync(path.join(PROJECT_ROOT, "test/fixtures", photo))]), path.basename(photo));
    const created = await fetch(`${url}/api/media`, { method: "POST", headers, body: form });
    const { media } = (await created.json()) as { media: { id: string } };
    await fetch(`${url}/api/media/${media.id}`, { method: "PATCH", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify({ visibility: "public" }) });
    for (let tries = 0; tries < 120; tries++) {
      const { media: now } = (await (await fetch(`${url}/api/media/${media.id}`, { headers })).json()) as { media: { status: string } };
      if (now.status === "ready") break;
      await delay(500);
    }
  }
}

async function main(): Promise<void> {
  const run = startRun(`wrk -t${options.threads} -c${options.connections} -d${options.seconds}s, warm-up ${options.warmupSeconds} s`, { showLoad: true });
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-bench-cluster-"));
  progress("cluster", "starting the cluster (HAProxy, 2 api nodes, core, 2 workers, MariaDB + 2 replicas, Redis, NATS, S3)");
  const cluster = await startCluster({
    dir,
    port: await freePort(),
    code: "source",
    nodeEnv: { RATE_API_REQUESTS_PER_IP_PER_MINUTE: "100000000", LOG_LEVEL: "warn" },
  });
  try {
    await publicPage(cluster.url);
    const api1 = cluster.nodes.find((node) => node.name === "api-1");
    if (api1?.port === undefined) throw new Error("api-1 has no port");
    const load = (url: string) => (seconds: number) => runWrk(url, { threads: options.threads, connections: options.connections, seconds });
    const measure = (label: string, url: string) => loadRound("cluster", label, options, load(url), describeWrk);
    const both = await measure("(a) HAProxy, two api nodes", `${cluster.url}${FEED_PATH}`);
    await cluster.kill("api-2", "SIGTERM");
    // HAProxy's checks (every 2 s, down after 2 failures) have taken api-2 out well before this.
    await delay(6000);
    const one = await measure("(b) HAProxy, one api node", `${cluster.url}${FEED_PATH}`);
    const direct = await measure("(c) api-1 directly", `http://127.0.0.1:${api1.port}${FEED_PATH}`);
    const lbCost = round(one.figures.requestsPerSecond / direct.figures.requestsPerSecond, 3);
    const scaling = round(both.figures.requestsPerSecond / one.figures.requestsPerSecond, 3);
    progress("cluster", `(b)/(c) = ${lbCost} (goal ${LB_COST_GOAL}: ${lbCost >= LB_COST_GOAL ? "met" : "not met"}); (a)/(b) = ${scaling}`);
    writeReport(options.output, {
      benchmark: "cluster",
      ...run,
      load: { tool: "wrk", threads: options.threads, connections: options.connections, seconds: options.seconds, warmupSeconds: options.warmupSeconds },
      path: FEED_PATH,
      rounds: { twoApiNodesThroughHaproxy: both, oneApiNodeThroughHaproxy: one, oneApiNodeDirect: direct },
      ratios: { loadBalancerCost: lbCost, twoNodesOverOne: scaling },
      goal: { statement: `(b)/(c) >= ${LB_COST_GOAL}`, met: lbCost >= LB_COST_GOAL },
      limits:
        "On this 2-core machine the two api nodes, HAProxy, wrk, Redis and MariaDB share two cores: a second api node adds no core of its own, so (a)/(b) shows the cost of sharing, not horizontal scaling.",
    });
    printWrittenTo(options.output);
  } finally {
    await cluster.stop();
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

runMain(main);

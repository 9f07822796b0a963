/**
 * The public feed against the seed's stack: `npm run bench:feed` (see bench/README.md).
 *
 * In one run, on loopback: private MariaDB primary + replica, Redis, NATS and S3 (scripts/services); the
 * same 10,000 users and 100,000 items in Shoal's databases and in the seed's `seedsite` (bench/feed-seed.ts);
 * Shoal nodes (SERVICES=api,users,media,site, cluster mode) and the seed's nginx + PHP-FPM
 * (../shared/baselines/php). wrk loads each with the same threads, connections and duration:
 *   (a) GET /api/media?scope=public&limit=24, response cache on;   (b) the same with CACHE_ENABLED=false;
 *   (c) gallery.php?limit=24 (one query per request, no cache);
 *   (d) a bare node:http server answering with Shoal's feed bytes: the machine's ceiling for that answer.
 * (a), (b) and (d) are measured with two processes behind a round-robin HAProxy (one per core, as a
 * deployment would run them) and with one process. Then a node with `--cpu-prof` is loaded as in (b) and
 * its profile summarised. Writes bench/results/feed.json.
 *
 * Environment: BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (3), BENCH_THREADS (2), BENCH_CONNECTIONS (32),
 * BENCH_OUTPUT, BENCH_CPU_PROF_DIR (keep the profile there; otherwise it goes with the temporary directory),
 * BENCH_FEED_PROFILE=0 (no profile round).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { requireBinaries } from "../scripts/services";
import { seedPhpBaseline } from "./feed-seed";
import { startPhpStack } from "./feed-servers";
import { Resources, cpuProfDirFromEnv, numberFromEnv, outputFromEnv, printWrittenTo, progress, round, runMain, startRun, stopOnInterrupt, writeReport } from "./harness/common";
import { formatProfile, mainThreadProfile, summariseProfile } from "./harness/profile";
import { loadRound } from "./harness/rounds";
import type { Measured } from "./harness/rounds";
import type { SeededCluster } from "./harness/seeded-cluster";
import { startSeededCluster } from "./harness/seeded-cluster";
import { describeWrk, runWrk, stopWrk } from "./harness/wrk";
import type { WrkFigures } from "./harness/wrk";

const FEED_PATH = "/api/media?scope=public&limit=24";
const PHP_PATH = "/?limit=24";
const GOALS = { aOverC: 3, bOverC: 1 };

const options = {
  seconds: numberFromEnv("BENCH_SECONDS", 10),
  warmupSeconds: numberFromEnv("BENCH_WARMUP_SECONDS", 3, { allowZero: true }),
  threads: numberFromEnv("BENCH_THREADS", 2, { integer: true }),
  connections: numberFromEnv("BENCH_CONNECTIONS", 32, { integer: true }),
  output: outputFromEnv("feed"),
  cpuProfDir: cpuProfDirFromEnv(),
  profile: process.env.BENCH_FEED_PROFILE !== "0",
};

type Round = Measured<WrkFigures> & { readonly url: string };

function wrkRound(scope: string, label: string, url: string): Promise<Round> {
  const load = (seconds: number) => runWrk(url, { threads: options.threads, connections: options.connections, seconds });
  return loadRound(scope, label, options, load, describeWrk).then((measured) => ({ url, ...measured }));
}

/** GET `url` as JSON, 200 only. */
async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

interface FeedItem {
  readonly title: string | null;
  readonly status: string;
  readonly variants: ReadonlyArray<{ readonly name: string }>;
}

/** Both stacks list the same 24 items (by title, in order), Shoal's all ready with thumb and display. */
async function checkSameItems(shoalUrl: string, phpUrl: string): Promise<{ items: number; firstTitle: string; shoalBytes: number; phpBytes: number }> {
  const shoal = await getJson<{ items: FeedItem[] }>(shoalUrl);
  const php = await getJson<{ items: Array<{ title: string }> }>(phpUrl);
  const shoalTitles = shoal.items.map((item) => item.title).join("|");
  const phpTitles = php.items.map((item) => item.title).join("|");
  if (shoal.items.length !== 24 || shoalTitles !== phpTitles) throw new Error(`the two feeds differ:\nshoal: ${shoalTitles}\nphp:   ${phpTitles}`);
  const incomplete = shoal.items.find((item) => item.status !== "ready" || !["thumb", "display"].every((name) => item.variants.some((v) => v.name === name)));
  if (incomplete !== undefined) throw new Error(`a feed item is not ready with thumb and display: ${JSON.stringify(incomplete)}`);
  const bytes = async (url: string) => (await (await fetch(url)).arrayBuffer()).byteLength;
  return { items: shoal.items.length, firstTitle: shoal.items[0]?.title ?? "", shoalBytes: await bytes(shoalUrl), phpBytes: await bytes(phpUrl) };
}

function ratios(a: Round, b: Round, c: Round) {
  const aOverC = round(a.figures.requestsPerSecond / c.figures.requestsPerSecond, 2);
  const bOverC = round(b.figures.requestsPerSecond / c.figures.requestsPerSecond, 2);
  const p99NoWorse = a.figures.latencyMs.p99 <= c.figures.latencyMs.p99;
  return { aOverC, bOverC, aP99Ms: a.figures.latencyMs.p99, cP99Ms: c.figures.latencyMs.p99, met: { a: aOverC >= GOALS.aOverC && p99NoWorse, b: bOverC >= GOALS.bOverC } };
}

async function main(): Promise<void> {
  requireBinaries(["mariadbd", "mariadb-install-db", "redis-server", "nats-server", "haproxy"]);
  for (const tool of ["wrk", "nginx", "php-fpm8.2"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool} || test -x /usr/sbin/${tool}`], { stdio: "ignore" });
    } catch {
      throw new Error(`${tool} not found: apt-get install wrk nginx php8.2-fpm php8.2-mysql`);
    }
  }
  const resources = new Resources();
  stopOnInterrupt("stopping the servers and private services", () => {
    stopWrk();
    return resources.releaseAll();
  });
  const { machine, date, code } = startRun(
    `wrk -t${options.threads} -c${options.connections}, ${options.warmupSeconds} s warm-up + ${options.seconds} s measured per server`,
    { showLoad: true },
  );
  try {
    const cluster = await startSeededCluster("feed", resources, { firstNode: { label: "a-1", env: {} } });
    const { mariadb, seeded, startNode, firstNode: a1 } = cluster;
    const primaryUrl = new URL(mariadb.primaryUrl);
    progress("feed", "seeding seedsite, the PHP stack's copy");
    await seedPhpBaseline(mariadb, primaryUrl.username);
    await mariadb.waitForReplicaCatchUp(0, 120_000);
    progress("feed", `seeded ${JSON.stringify(seeded)}; the replica has caught up`);

    progress("feed", "starting a-group (cache on, NODE_PROCESSES=2), b-1 and b-group (CACHE_ENABLED=false), and the PHP stack");
    const groupOfTwo = { NODE_PROCESSES: "2" };
    const aGroup = await startNode("a-group", groupOfTwo);
    const b1 = await startNode("b-1", { CACHE_ENABLED: "false" });
    const bGroup = await startNode("b-group", { CACHE_ENABLED: "false", ...groupOfTwo });
    // Its own directory under the temporary one: nginx's workers and PHP-FPM's children (www-data) must reach it.
    const phpDir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-bench-php-"));
    resources.add(`directory ${phpDir}`, () => fs.promises.rm(phpDir, { recursive: true, force: true }));
    const php = await startPhpStack(phpDir, mariadb.primary.port, primaryUrl.username, decodeURIComponent(primaryUrl.password));
    resources.add("PHP stack", () => php.stop());
    const checks = await checkSameItems(`${b1.baseUrl}${FEED_PATH}`, `${php.baseUrl}${PHP_PATH}`);
    progress("feed", `both stacks list the same 24 items (newest: ${checks.firstTitle}); ${checks.shoalBytes} bytes from Shoal, ${checks.phpBytes} from PHP`);
    // (d): what this machine can do at best with these bytes, to tell the code's cost from the machine's ceiling.
    const feedBytes = Buffer.from(await (await fetch(`${a1.baseUrl}${FEED_PATH}`)).arrayBuffer());
    const rawEnv = { BENCH_ROLE: "raw", BENCH_BODY_BASE64: feedBytes.toString("base64") };
    const d1 = await startNode("d-1", rawEnv);
    const dGroup = await startNode("d-group", { ...rawEnv, ...groupOfTwo });

    const c = await wrkRound("feed", "(c) PHP-FPM", `${php.baseUrl}${PHP_PATH}`);
    const a2x = await wrkRound("feed", "(a) cached, 2 processes", `${aGroup.baseUrl}${FEED_PATH}`);
    const b2x = await wrkRound("feed", "(b) uncached, 2 processes", `${bGroup.baseUrl}${FEED_PATH}`);
    const a1x = await wrkRound("feed", "(a) cached, 1 process", `${a1.baseUrl}${FEED_PATH}`);
    const b1x = await wrkRound("feed", "(b) uncached, 1 process", `${b1.baseUrl}${FEED_PATH}`);
    const d2x = await wrkRound("feed", "(d) bare node:http, same bytes, 2 processes", `${dGroup.baseUrl}${FEED_PATH}`);
    const d1x = await wrkRound("feed", "(d) bare node:http, same bytes, 1 process", `${d1.baseUrl}${FEED_PATH}`);
    const cAgain = await wrkRound("feed", "(c) PHP-FPM again", `${php.baseUrl}${PHP_PATH}`);
    // The services stay for the profile round; the servers measured go.
    await Promise.all([a1, aGroup, b1, bGroup, d1, dGroup].map((node) => node.child.stop()));
    await php.stop();

    let profile: unknown = null;
    if (options.profile) profile = await profileRound(cluster);

    const twoProcesses = ratios(a2x, b2x, c);
    const oneProcess = ratios(a1x, b1x, c);
    const report = {
      benchmark: "feed",
      date,
      machine,
      code: code ?? null,
      load: { tool: wrkVersion(), threads: options.threads, connections: options.connections, warmupSeconds: options.warmupSeconds, measuredSeconds: options.seconds },
      setup: {
        shoal: "cluster mode; nodes with SERVICES=api,users,media,site; MariaDB primary + 1 replica, Redis, NATS, s3rver on loopback",
        apiProcesses: { deployment: 2, note: "one node with NODE_PROCESSES=2 (one process per core, sharing the port through Node's cluster module); one-process figures beside them" },
        php: `../shared/baselines/php: nginx (2 workers) + PHP-FPM 8.2 (pm static, ${php.fpmChildren} children), gallery.php against seedsite on the primary`,
        data: seeded,
        phpReadsFrom: "the primary (the seed has one server); Shoal's uncached reads go to the replica",
      },
      goal: {
        statement: `(a)/(c) >= ${GOALS.aOverC} with p99 no worse than (c); (b)/(c) >= ${GOALS.bOverC}; judged on the two-process figures`,
        twoProcesses,
        oneProcess,
        met: twoProcesses.met.a && twoProcesses.met.b,
      },
      ceiling: {
        statement: "(d): a bare node:http server answering every request with Shoal's feed bytes, the same way (a group of two processes, and one)",
        bytes: feedBytes.length,
        dOverC: { twoProcesses: round(d2x.figures.requestsPerSecond / c.figures.requestsPerSecond, 2), oneProcess: round(d1x.figures.requestsPerSecond / c.figures.requestsPerSecond, 2) },
        aOverD: { twoProcesses: round(a2x.figures.requestsPerSecond / d2x.figures.requestsPerSecond, 2), oneProcess: round(a1x.figures.requestsPerSecond / d1x.figures.requestsPerSecond, 2) },
      },
      rounds: { c, aTwoProcesses: a2x, bTwoProcesses: b2x, aOneProcess: a1x, bOneProcess: b1x, dTwoProcesses: d2x, dOneProcess: d1x, cAgain },
      checks,
      profile,
    };
    writeReport(options.output, report);
    printSummary(report.rounds, twoProcesses, oneProcess);
    console.log(`ceiling (d), ${report.ceiling.bytes} bytes: d/c = ${report.ceiling.dOverC.twoProcesses} (2 processes), ${report.ceiling.dOverC.oneProcess} (1); a/d = ${report.ceiling.aOverD.twoProcesses} (2), ${report.ceiling.aOverD.oneProcess} (1)`);
    printWrittenTo(options.output);
  } finally {
    await resources.releaseAll();
  }
}

/** One node, CACHE_ENABLED=false, run with --cpu-prof and loaded as in (b); its main thread's profile, summarised. */
async function profileRound(cluster: SeededCluster) {
  const profDir = options.cpuProfDir ?? path.join(cluster.dir, "profile");
  fs.mkdirSync(profDir, { recursive: true });
  progress("profile", "starting one node (CACHE_ENABLED=false) with --cpu-prof");
  const { child: node, baseUrl } = await cluster.startNode("b-prof", { CACHE_ENABLED: "false" }, { nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${profDir}`], scope: "profile" });
  const measured = await wrkRound("profile", "(b) uncached, 1 process, --cpu-prof", `${baseUrl}${FEED_PATH}`);
  const roundEnd = Date.now();
  await node.stop();
  // The samples of the measured round only: it ended this long before the profile did.
  const endOffsetSeconds = (Date.now() - roundEnd) / 1000;
  const file = mainThreadProfile(profDir, node.pid);
  if (file === undefined) return { error: `no main-thread profile of pid ${node.pid} in ${profDir}` };
  const summary = summariseProfile(file, 15, { seconds: options.seconds, endOffsetSeconds });
  console.log(formatProfile(summary).join("\n"));
  return { round: measured, ...summary, file: options.cpuProfDir !== undefined ? file : path.basename(file) };
}

function wrkVersion(): string {
  try {
    execFileSync("wrk", ["-v"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const out = String((error as { stdout?: string }).stdout ?? "");
    return out.split("\n")[0]?.trim() || "wrk";
  }
  return "wrk";
}

function printSummary(rounds: Record<string, Round>, two: ReturnType<typeof ratios>, one: ReturnType<typeof ratios>): void {
  console.log(`\n${"".padEnd(30)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}  idle before/during`);
  for (const [name, value] of Object.entries(rounds)) {
    const { figures: f, machineLoad: load } = value;
    console.log(`  ${name.padEnd(28)}${f.requestsPerSecond.toFixed(0).padStart(9)}${String(f.latencyMs.p50).padStart(9)}${String(f.latencyMs.p99).padStart(9)}  ${(load.before.cpuIdle * 100).toFixed(0)} % / ${(load.during.cpuIdle * 100).toFixed(0)} %`);
  }
  for (const [label, r] of [["2 processes", two], ["1 process", one]] as const) {
    console.log(`${label}: a/c = ${r.aOverC} (p99 ${r.aP99Ms} vs ${r.cP99Ms} ms) ${r.met.a ? "met" : "not met"}; b/c = ${r.bOverC} ${r.met.b ? "met" : "not met"}`);
  }
}

runMain(main);

/**
 * What the soak (bench/soak.ts) watches besides the clients: each node's RSS and open file descriptors and
 * the primary's connections every few seconds, and the files left behind on the nodes and in the bucket.
 */
import fs from "node:fs";
import path from "node:path";
import mysql from "mysql2/promise";
import type { RowDataPacket } from "mysql2/promise";
import type { Cluster } from "../scripts/cluster/launcher";
import { round } from "./harness/common";

export interface Sample {
  readonly atSeconds: number;
  /** Node name → RSS in MiB, open fds, and V8's heap in use and memory outside it (Buffers, ArrayBuffers) in MiB from the node's metrics. */
  readonly nodes: Readonly<Record<string, NodeSample>>;
  /** SHOW PROCESSLIST on the primary: every connection but the sampler's own. */
  readonly primaryConnections: number;
  readonly loadAverage1m: number;
  /** The longest the benchmark's own event loop was held up since the sample before (its clients' and s3rver's work), ms. */
  readonly benchLoopDelayMaxMs?: number;
}

export interface NodeSample {
  readonly rssMiB: number;
  readonly fds: number;
  readonly heapUsedMiB?: number;
  readonly externalMiB?: number;
}

/** process.memory.heap.size.used and process.memory.external from the node's /metrics (Moleculer's process metrics). */
async function nodeMemory(metricsPort: number): Promise<{ heapUsedMiB?: number; externalMiB?: number }> {
  try {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await response.text();
    const mib = (name: string): number | undefined => {
      const value = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([\\d.e+]+)`, "m").exec(text)?.[1];
      return value === undefined ? undefined : round(Number(value) / 1024 / 1024, 1);
    };
    return { heapUsedMiB: mib("process_memory_heap_size_used"), externalMiB: mib("process_memory_external") };
  } catch {
    return {};
  }
}

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return round(kib / 1024, 1);
}

const openFds = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).length;

/** The primary's unix socket, from the launcher's record of its log file (root is allowed over the socket). */
export function primarySocket(cluster: Cluster): string {
  const primary = cluster.processes().find((each) => each.name === "mariadb-primary");
  const logFile = primary?.logFiles[0];
  if (logFile === undefined) throw new Error("the cluster has no MariaDB primary");
  return path.join(path.dirname(logFile), "mysqld.sock");
}

export async function takeSample(cluster: Cluster, socketPath: string, startedAt: number, loadAverage1m: number): Promise<Sample> {
  const nodes: Record<string, NodeSample> = {};
  for (const node of cluster.nodes) {
    if (node.pid !== undefined) nodes[node.name] = { rssMiB: rssMiB(node.pid), fds: openFds(node.pid), ...(await nodeMemory(node.metricsPort)) };
  }
  const connection = await mysql.createConnection({ socketPath, user: "root" });
  try {
    const [rows] = await connection.query<RowDataPacket[]>("SHOW PROCESSLIST");
    return { atSeconds: round((Date.now() - startedAt) / 1000, 1), nodes, primaryConnections: rows.length - 1, loadAverage1m };
  } finally {
    connection.destroy();
  }
}

export interface Trend {
  readonly first: number;
  readonly last: number;
  readonly max: number;
  /** Mean of the last window over the mean of the first. */
  readonly ratio: number;
}

/** Compares the mean of the samples in the first and the last `windowSeconds` of the run. */
export function trend(samples: readonly Sample[], value: (sample: Sample) => number | undefined, windowSeconds: number): Trend {
  const end = samples.at(-1)?.atSeconds ?? 0;
  const mean = (list: readonly Sample[]): number => {
    const values = list.map(value).filter((each): each is number => each !== undefined);
    return values.length === 0 ? 0 : values.reduce((sum, each) => sum + each, 0) / values.length;
  };
  const start = samples[0]?.atSeconds ?? 0;
  const first = mean(samples.filter((sample) => sample.atSeconds <= start + windowSeconds));
  const last = mean(samples.filter((sample) => sample.atSeconds >= end - windowSeconds));
  const max = Math.max(0, ...samples.map(value).filter((each): each is number => each !== undefined));
  return { first: round(first, 1), last: round(last, 1), max: round(max, 1), ratio: first > 0 ? round(last / first, 3) : 0 };
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

/** Every file in the nodes' data directories (their TMPDIR too). */
export function nodeFiles(cluster: Cluster): Set<string> {
  return new Set(filesUnder(path.join(cluster.dir, "nodes")));
}

export interface BucketContents {
  readonly objectKeys: readonly string[];
  /** Multipart uploads begun and neither completed nor aborted. */
  readonly pendingMultipartUploads: number;
}

/** The bucket as s3rver keeps it on disk under the cluster's directory. */
export function bucketContents(cluster: Cluster, bucket = "shoal"): BucketContents {
  const s3Dir = fs.readdirSync(cluster.dir).find((name) => name.startsWith("shoal-s3-"));
  if (s3Dir === undefined) throw new Error(`no s3rver directory under ${cluster.dir}`);
  const root = path.join(cluster.dir, s3Dir, bucket);
  const suffix = "._S3rver_object";
  const objectKeys = filesUnder(root)
    .filter((file) => file.endsWith(suffix) && !file.includes("._S3rver_uploads"))
    .map((file) => path.relative(root, file).slice(0, -suffix.length));
  const uploads = path.join(root, "._S3rver_uploads");
  const pendingMultipartUploads = fs.existsSync(uploads) ? fs.readdirSync(uploads).length : 0;
  return { objectKeys, pendingMultipartUploads };
}

/** Each api node's probe paths timed directly (not through HAProxy), every `everyMs`, each request bounded by `timeoutMs`. */
export class ProbeTimer {
  private readonly timings = new Map<string, number[]>();
  private readonly failures = new Map<string, number>();
  /** "node path check status" → how many answers named that check with a status other than ok. */
  private readonly notOkChecks = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly targets: ReadonlyArray<{ readonly node: string; readonly url: string }>,
    private readonly everyMs = 2000,
    private readonly timeoutMs = 10_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.round(), this.everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async round(): Promise<void> {
    await Promise.all(
      this.targets.map(async ({ node, url }) => {
        const key = `${node} ${new URL(url).pathname}`;
        const started = performance.now();
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
          const text = await response.text();
          if (!key.endsWith("/live")) this.countNotOk(key, text);
          if (response.status !== 200) this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
          const list = this.timings.get(key) ?? [];
          list.push(performance.now() - started);
          this.timings.set(key, list);
        } catch {
          this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
        }
      }),
    );
  }

  private countNotOk(key: string, text: string): void {
    let checks: Record<string, { status?: string }> = {};
    try {
      checks = (JSON.parse(text) as { checks?: Record<string, { status?: string }> }).checks ?? {};
    } catch {
      return;
    }
    for (const [name, check] of Object.entries(checks)) {
      if (check.status !== "ok") this.notOkChecks.set(`${key} ${name} ${check.status ?? "?"}`, (this.notOkChecks.get(`${key} ${name} ${check.status ?? "?"}`) ?? 0) + 1);
    }
  }

  /** Which checks the answers named with a status other than ok, and how often. */
  checksNotOk(): Record<string, number> {
    return Object.fromEntries([...this.notOkChecks].sort());
  }

  /** Per node and path: count, p50, p99, max in ms, answers over 2 s, and answers that were not 200 or never came. */
  summary(): Record<string, { count: number; p50Ms: number; p99Ms: number; maxMs: number; over2s: number; failed: number }> {
    const percentile = (sorted: readonly number[], share: number): number => sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? 0;
    const keys = new Set([...this.timings.keys(), ...this.failures.keys()]);
    return Object.fromEntries(
      [...keys].sort().map((key) => {
        const sorted = [...(this.timings.get(key) ?? [])].sort((a, b) => a - b);
        return [
          key,
          {
            count: sorted.length,
            p50Ms: round(percentile(sorted, 0.5), 1),
            p99Ms: round(percentile(sorted, 0.99), 1),
            maxMs: round(sorted.at(-1) ?? 0, 1),
            over2s: sorted.filter((each) => each > 2000).length,
            failed: this.failures.get(key) ?? 0,
          },
        ];
      }),
    );
  }
}

/** HAProxy's log lines that took a server out of rotation or put it back, and the reason it gave. */
export function haproxyStateChanges(cluster: Cluster): { down: number; up: number; noServerLeft: number; lines: string[] } {
  const file = path.join(cluster.dir, "logs", "haproxy.log");
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const lines = text.split("\n").filter((line) => / is (DOWN|UP)\b|has no server available/.test(line));
  return {
    down: lines.filter((line) => / is DOWN\b/.test(line)).length,
    up: lines.filter((line) => / is UP\b/.test(line)).length,
    noServerLeft: lines.filter((line) => /has no server available/.test(line)).length,
    lines: lines.slice(0, 40),
  };
}

/**
 * The whole cluster on this machine, on loopback: a MariaDB primary and two GTID replicas, Redis, NATS
 * with JetStream (file storage), the S3 stand-in, two `api` nodes behind HAProxy, one core node
 * (`users,media,site`) and two `processing` nodes. The datastores come from scripts/services/.
 *
 *   const cluster = await startCluster({ dir, port: 8080 });
 *   cluster.url;                        // http://127.0.0.1:8080, HAProxy
 *   cluster.nodes;                      // [{ name: "api-1", role: "api", pid, port, ... }, ...]
 *   await cluster.kill("api-1", "SIGTERM");
 *   await cluster.restart("api-1");     // same ports, so HAProxy finds it again
 *   await cluster.stop();
 *
 * The processes are children of the calling process and end with it (scripts/services/processes.ts);
 * `npm run cluster -- up` runs this in a detached process of its own so that the cluster outlives the
 * command.
 */
// The build (tsconfig.build.json) leaves scripts/services out of its file list but follows imports into
// it, so s3.ts needs its module declaration brought in here; an import cannot name a declaration file.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference
/// <reference path="../services/s3rver.d.ts" />
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ALL_BINARIES, binaryPath, requireBinaries } from "../services/binaries";
import type { BinaryName } from "../services/binaries";
import { envFor, prepareMariaDbTemplate, startServices } from "../services/index";
import type { TestServices } from "../services/index";
import { canConnect, freePort } from "../services/ports";
import { ServerProcess, onFreePort } from "../services/processes";
import { renderHaproxyConfig } from "./haproxy-config";

const ROOT = path.resolve(__dirname, "../..");

export type NodeRole = "api" | "core" | "processing";

/** The nodes of the local cluster: name, role and the services each runs. */
export const NODE_LAYOUT: ReadonlyArray<{ readonly name: string; readonly role: NodeRole; readonly services: string }> = [
  { name: "api-1", role: "api", services: "api" },
  { name: "api-2", role: "api", services: "api" },
  { name: "core-1", role: "core", services: "users,media,site" },
  { name: "processing-1", role: "processing", services: "processing" },
  { name: "processing-2", role: "processing", services: "processing" },
];

/** How a node is run: `built` is `node dist/server.js` (npm run build first), `source` is server.ts through tsx. */
export type NodeCode = "built" | "source";

export interface ClusterOptions {
  /** Everything the cluster keeps: data, logs, configuration. Made if missing. */
  readonly dir: string;
  /** HAProxy's port on 127.0.0.1. */
  readonly port: number;
  /** Default `built`. */
  readonly code?: NodeCode;
  /** Where to look for the Debian binaries (default: PATH and the sbin directories). */
  readonly binarySearchDirs?: readonly string[];
  /** Added to every node's environment, over the cluster's own settings. */
  readonly nodeEnv?: Readonly<Record<string, string>>;
  /** Serve the S3 stand-in from a child process, as a real object store runs apart (default: in the calling process). */
  readonly s3OwnProcess?: boolean;
  /** Progress lines ("datastores ready", ...). */
  readonly log?: (line: string) => void;
}

export interface ClusterNode {
  readonly name: string;
  readonly role: NodeRole;
  /** SERVICES of the node. */
  readonly services: string;
  /** While it runs. */
  readonly pid: number | undefined;
  /** HTTP port of an api node. */
  readonly port: number | undefined;
  /** The node's private metrics listener: GET /health is its readiness with details, /metrics Prometheus. */
  readonly metricsPort: number;
  readonly logFile: string;
}

/** Ready when the URL answers 200, when the port accepts connections, or (`running`) while the process runs. */
export type Readiness =
  | { readonly kind: "http"; readonly url: string }
  | { readonly kind: "tcp"; readonly port: number }
  | { readonly kind: "running" };

/** One process of the cluster as `status` shows it. */
export interface ClusterProcess {
  readonly name: string;
  /** api, core, processing, load balancer, mariadb primary, mariadb replica, redis, nats, s3. */
  readonly role: string;
  readonly pid: number | undefined;
  readonly readiness: Readiness;
  readonly logFiles: readonly string[];
}

export interface Cluster {
  /** Where clients connect: HAProxy. */
  readonly url: string;
  readonly dir: string;
  readonly nodes: readonly ClusterNode[];
  /** Every process, datastores and HAProxy included; S3 runs inside the launching process. */
  processes(): ClusterProcess[];
  /** Sends the signal (default SIGKILL) to a node or to "haproxy"; resolves when it has exited. */
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Stops it if it runs, then starts it again on the same ports; resolves once it is ready. */
  restart(name: string): Promise<void>;
  /** HAProxy, then the nodes, then the datastores, whose data goes with them; logs stay. */
  stop(): Promise<void>;
}

/** GET with the answer's status and (the start of) its body; rejects when nothing answers. */
export function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { timeout: timeoutMs, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        if (body.length < 64 * 1024) body += chunk;
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on("error", reject);
  });
}

async function expect200(url: string): Promise<void> {
  const { status, body } = await httpGet(url);
  if (status !== 200) throw new Error(`GET ${url} answered ${status} ${body.slice(0, 300)}`);
}

/** The Debian binaries the cluster runs. */
export const CLUSTER_BINARIES: readonly BinaryName[] = [...ALL_BINARIES, "haproxy"];

/** One line when something already listens there, before anything is started. */
export function requireFreePort(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = http.createServer();
    server.once("error", () => reject(new Error(`127.0.0.1:${port} is in use: choose another port with --port`)));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resolve()));
  });
}

async function makeClusterDir(dir: string): Promise<void> {
  await fs.promises.mkdir(path.join(dir, "logs"), { recursive: true });
  // As root, mariadbd runs as `mysql`, which must be able to reach its directories below this one.
  if (process.getuid?.() === 0) await fs.promises.chmod(dir, 0o755);
  // The default directory sits in the work tree: keep it out of git.
  await fs.promises.writeFile(path.join(dir, ".gitignore"), "*\n");
}

/** The jest global setup's template when there is one; otherwise one kept under the cluster directory. */
async function mariaDbTemplate(dir: string): Promise<string> {
  const given = process.env.SHOAL_TEST_MARIADB_TEMPLATE;
  if (given !== undefined && fs.existsSync(path.join(given, "mysql"))) return given;
  const templateRoot = path.join(dir, "mariadb-template");
  const datadir = path.join(templateRoot, "datadir");
  if (fs.existsSync(path.join(datadir, "mysql"))) return datadir;
  await fs.promises.rm(templateRoot, { recursive: true, force: true });
  return prepareMariaDbTemplate(templateRoot);
}

function nodeCommand(code: NodeCode): readonly string[] {
  if (code === "source") return ["--import", pathToFileURL(require.resolve("tsx")).href, path.join(ROOT, "server.ts")];
  const server = path.join(ROOT, "dist", "server.js");
  if (!fs.existsSync(server)) throw new Error(`${server} is missing: run npm run build first`);
  return [server];
}

class NodeProcess implements ClusterNode {
  port: number | undefined;
  metricsPort = 0;
  readonly logFile: string;
  private readonly dataDir: string;
  private readonly process: ServerProcess;

  constructor(
    readonly name: string,
    readonly role: NodeRole,
    readonly services: string,
    dir: string,
    command: readonly string[],
    clusterEnv: Readonly<Record<string, string>>,
    overrides: Readonly<Record<string, string>>,
  ) {
    this.logFile = path.join(dir, "logs", `${name}.log`);
    this.dataDir = path.join(dir, "nodes", name);
    this.process = new ServerProcess({
      label: `node ${name}`,
      command: process.execPath,
      args: () => command,
      // Not the work tree: a developer's .env there would reach the nodes (dotenv reads the working directory).
      cwd: this.dataDir,
      env: () => ({ ...process.env, ...clusterEnv, ...this.ownEnv(), ...overrides }),
      outputFile: this.logFile,
      probe: () => expect200(this.healthUrl),
      readyTimeoutMs: 180_000,
      // A stopping node lets work in flight finish for SHUTDOWN_TIMEOUT_SECONDS (default 30).
      stopTimeoutMs: 45_000,
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get healthUrl(): string {
    return `http://127.0.0.1:${this.metricsPort}/health`;
  }

  /** First start: picks the ports (a restart keeps them, so HAProxy's configuration stays right). */
  async create(): Promise<void> {
    await fs.promises.mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    await onFreePort(freePort, async (metricsPort) => {
      this.metricsPort = metricsPort;
      if (this.role === "api") this.port = await freePort();
      await this.process.start();
    });
  }

  start(): Promise<void> {
    return this.process.start();
  }

  stop(): Promise<void> {
    return this.process.stop();
  }

  kill(signal: NodeJS.Signals): Promise<void> {
    return this.process.kill(signal);
  }

  private ownEnv(): Record<string, string> {
    const env: Record<string, string> = {
      NODE_ID: this.name,
      SERVICES: this.services,
      SHOAL_DATA_DIR: this.dataDir,
      TMPDIR: this.dataDir,
      METRICS_PORT: String(this.metricsPort),
      METRICS_HOST: "127.0.0.1",
    };
    if (this.port !== undefined) env.PORT = String(this.port);
    return env;
  }
}

function haproxyProcess(dir: string, port: number, apiNodes: readonly NodeProcess[]): ServerProcess {
  const configFile = path.join(dir, "haproxy.cfg");
  fs.writeFileSync(
    configFile,
    renderHaproxyConfig({
      bind: `127.0.0.1:${port}`,
      apiServers: apiNodes.map((node) => ({ name: node.name, address: `127.0.0.1:${node.port ?? 0}` })),
    }),
  );
  return new ServerProcess({
    label: "haproxy",
    command: binaryPath("haproxy"),
    // -db: stay in the foreground, logging to stdout (the `log stdout` of the template).
    args: () => ["-db", "-f", configFile],
    outputFile: path.join(dir, "logs", "haproxy.log"),
    probe: () => canConnect(port),
    readyTimeoutMs: 15_000,
    stopTimeoutMs: 10_000,
  });
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const dir = path.resolve(options.dir);
  const log = options.log ?? (() => undefined);
  requireBinaries(CLUSTER_BINARIES, options.binarySearchDirs);
  const command = nodeCommand(options.code ?? "built");
  await requireFreePort(options.port);
  await makeClusterDir(dir);
  const url = `http://127.0.0.1:${options.port}`;

  log("starting MariaDB (a primary and two replicas), Redis, NATS and S3");
  const services: TestServices = await startServices({
    mariadb: { replicas: 2, templateDir: await mariaDbTemplate(dir) },
    redis: true,
    nats: true,
    s3: { bucket: "shoal", ownProcess: options.s3OwnProcess === true },
    baseDir: dir,
  });
  const { mariadb, redis, nats, s3 } = services;
  if (mariadb === undefined || redis === undefined || nats === undefined || s3 === undefined) {
    throw new Error("a datastore did not start");
  }

  const clusterEnv: Record<string, string> = {
    ...envFor(services),
    SHOAL_PUBLIC_URL: url,
    // Only HAProxy, on loopback, is between clients and the api nodes.
    TRUSTED_PROXIES: "loopback",
    // A stopping api node serves on until HAProxy's checks (every 2 s, down after 2 failures) have taken it out.
    SHUTDOWN_DELAY_SECONDS: "5",
    // As the image sets it (Dockerfile): glibc gives back what sharp's threads freed instead of keeping it per thread.
    MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? "2",
  };
  const nodes = NODE_LAYOUT.map(
    (layout) => new NodeProcess(layout.name, layout.role, layout.services, dir, command, clusterEnv, options.nodeEnv ?? {}),
  );
  let haproxy: ServerProcess | undefined;

  const stopNodes = async (): Promise<void> => {
    await Promise.allSettled(nodes.filter((node) => node.role !== "core").map((node) => node.stop()));
    await Promise.allSettled(nodes.filter((node) => node.role === "core").map((node) => node.stop()));
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await haproxy?.stop();
      await stopNodes();
      await services.stop();
    })());

  try {
    log("starting the nodes: api-1, api-2, core-1 (users,media,site), processing-1, processing-2");
    await Promise.all(nodes.map((node) => node.create()));
    log(`starting HAProxy on ${url}`);
    haproxy = haproxyProcess(dir, options.port, nodes.filter((node) => node.role === "api"));
    await haproxy.start();
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  const find = (name: string): NodeProcess | ServerProcess => {
    if (name === "haproxy" && haproxy !== undefined) return haproxy;
    const node = nodes.find((candidate) => candidate.name === name);
    if (node === undefined) {
      throw new Error(`no process "${name}" to signal (nodes: ${nodes.map((each) => each.name).join(", ")}; and haproxy)`);
    }
    return node;
  };

  const processes = (): ClusterProcess[] => [
    { name: "mariadb-primary", role: "mariadb primary", pid: mariadb.primary.pid, readiness: { kind: "tcp", port: mariadb.primary.port }, logFiles: [path.join(mariadb.primary.dir, "mariadbd.err")] },
    ...mariadb.replicas.map((replica, index) => ({
      name: `mariadb-replica-${index + 1}`,
      role: "mariadb replica",
      pid: replica.pid,
      readiness: { kind: "tcp" as const, port: replica.port },
      logFiles: [path.join(replica.dir, "mariadbd.err")],
    })),
    { name: "redis", role: "redis", pid: redis.pid, readiness: { kind: "tcp", port: redis.port }, logFiles: [path.join(redis.dir, "redis.log")] },
    { name: "nats", role: "nats", pid: nats.pid, readiness: { kind: "tcp", port: nats.port }, logFiles: [path.join(nats.dir, "nats.log")] },
    { name: "s3", role: "s3", pid: s3.pid ?? process.pid, readiness: { kind: "http", url: `${s3.endpoint}/${s3.bucket}` }, logFiles: [] },
    ...nodes.map((node) => ({
      name: node.name,
      role: node.role,
      pid: node.pid,
      readiness: { kind: "http" as const, url: node.healthUrl },
      logFiles: [node.logFile],
    })),
    { name: "haproxy", role: "load balancer", pid: haproxy?.pid, readiness: { kind: "http", url: `${url}/api/health` }, logFiles: [path.join(dir, "logs", "haproxy.log")] },
  ];

  log(`ready: ${url}`);
  return {
    url,
    dir,
    nodes,
    processes,
    kill: (name, signal = "SIGKILL") => find(name).kill(signal),
    restart: async (name) => {
      const target = find(name);
      await target.stop();
      await target.start();
    },
    stop,
  };
}

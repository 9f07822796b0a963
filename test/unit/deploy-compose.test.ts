/**
 * docker-compose.yml, its HAProxy configuration and the Dockerfile, checked without a container
 * runtime: Debian's docker-compose (v1) validates and renders the file; the nodes' environments go
 * through the same settings parser a node runs at start.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { parseSettings } from "../../config/settings";
import { COMPOSE_HAPROXY_CONFIG, COMPOSE_HAPROXY_OPTIONS, renderHaproxyConfig } from "../../scripts/cluster/haproxy-config";
import { settingNames } from "../support/settings-names";

const ROOT = path.resolve(__dirname, "../..");

interface ComposeService {
  readonly image?: string;
  readonly build?: unknown;
  readonly command?: readonly string[];
  readonly environment?: Readonly<Record<string, string | null>>;
  readonly depends_on?: Readonly<Record<string, { readonly condition: string }>>;
  readonly healthcheck?: { readonly test: readonly string[] };
  /** `source:target[:mode]` as docker-compose v1 renders them, or the long form. */
  readonly volumes?: ReadonlyArray<string | { readonly source: string; readonly target: string }>;
  readonly networks?: Readonly<Record<string, { readonly ipv4_address?: string } | null>>;
  readonly stop_grace_period?: string;
}

interface ComposeFile {
  readonly services: Readonly<Record<string, ComposeService>>;
  readonly volumes: Readonly<Record<string, unknown>>;
}

function dockerCompose(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync("docker-compose", ["--project-directory", ROOT, "--env-file", path.join(ROOT, ".env.example"), "-f", path.join(ROOT, "docker-compose.yml"), ...args], {
    encoding: "utf8",
  });
  if (run.error !== undefined) throw new Error(`docker-compose could not be run (${run.error.message}): apt-get install docker-compose`);
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** The file as Compose sees it: .env.example's values substituted, anchors merged. */
function renderedCompose(): ComposeFile {
  const rendered = dockerCompose(["config"]);
  if (rendered.status !== 0) throw new Error(rendered.stderr);
  return parse(rendered.stdout) as ComposeFile;
}

/** What is mounted at `target`: a host path, or the name of a volume. */
function mountedAt(service: ComposeService | undefined, target: string): string | undefined {
  for (const volume of service?.volumes ?? []) {
    if (typeof volume !== "string") {
      if (volume.target === target) return volume.source;
      continue;
    }
    const [source, mountPoint] = volume.split(":");
    if (mountPoint === target) return source;
  }
  return undefined;
}

const isShoalNode = (service: ComposeService): boolean => service.image?.startsWith("shoal:") === true;
const isLongRunningNode = (name: string, service: ComposeService): boolean => isShoalNode(service) && name !== "migrate";

describe("docker-compose.yml", () => {
  let compose: ComposeFile;

  beforeAll(() => {
    compose = renderedCompose();
  });

  it("is accepted by docker-compose config -q", () => {
    const check = dockerCompose(["config", "-q"]);
    expect({ status: check.status, stderr: check.stderr }).toEqual({ status: 0, stderr: "" });
  });

  it("runs the cluster's shape: two api nodes, a core node, an image worker and a transcoder from one image", () => {
    const nodes = Object.entries(compose.services).filter(([name, service]) => isLongRunningNode(name, service));
    const roles = nodes.map(([name, service]) => `${name}: ${service.environment?.SERVICES} ${service.environment?.PROCESSING_KINDS ?? ""}`.trim());
    expect(roles.sort()).toEqual(["api-1: api", "api-2: api", "core: users,media,site", "image-worker: processing image", "transcoder: processing video,audio"]);
    expect(new Set(nodes.map(([, service]) => service.image)).size).toBe(1);
  });

  it("gives every node only settings Shoal knows, and all that cluster mode needs", () => {
    const known = settingNames();
    for (const [name, service] of Object.entries(compose.services).filter(([, each]) => isShoalNode(each))) {
      const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([key, value]) => [key, value ?? ""]));
      expect({ name, unknown: Object.keys(env).filter((key) => !known.has(key)) }).toEqual({ name, unknown: [] });
      expect(env.SHOAL_MODE).toBe("cluster");
      const settings = parseSettings(env);
      expect(settings.databases.media).toMatchObject({ kind: "mysql", replicaUrls: [expect.stringContaining("@mariadb-replica:3306")] });
    }
  });

  it("starts a node only after the migration, the bucket and healthy datastores; the migration after the primary", () => {
    const expected = {
      migrate: "service_completed_successfully",
      "minio-bucket": "service_completed_successfully",
      "mariadb-replica": "service_healthy",
      redis: "service_healthy",
      nats: "service_healthy",
    };
    for (const [name, service] of Object.entries(compose.services).filter(([each, node]) => isLongRunningNode(each, node))) {
      const conditions = Object.fromEntries(Object.entries(service.depends_on ?? {}).map(([dependency, { condition }]) => [dependency, condition]));
      expect({ name, conditions }).toEqual({ name, conditions: expected });
    }
    expect(compose.services.migrate?.command).toEqual(["node", "dist/scripts/migrate.js"]);
    expect(compose.services.migrate?.depends_on).toEqual({ "mariadb-primary": { condition: "service_healthy" } });
    for (const datastore of ["mariadb-primary", "mariadb-replica", "redis", "nats", "minio"]) {
      expect({ datastore, healthcheck: compose.services[datastore]?.healthcheck?.test[0] }).toEqual({ datastore, healthcheck: "CMD" });
    }
  });

  it("keeps the datastores' data in named volumes", () => {
    for (const [datastore, target] of [["mariadb-primary", "/var/lib/mysql"], ["mariadb-replica", "/var/lib/mysql"], ["nats", "/data"], ["minio", "/data"]] as const) {
      const volume = mountedAt(compose.services[datastore], target);
      expect({ datastore, volume }).toEqual({ datastore, volume: expect.stringMatching(/^[a-z][a-z0-9_-]*$/) });
      expect(Object.keys(compose.volumes)).toContain(volume);
    }
  });

  it("sets up the replica's GTID replication from the primary in its init script", () => {
    const replicaScripts = mountedAt(compose.services["mariadb-replica"], "/docker-entrypoint-initdb.d");
    expect(replicaScripts).toBe(path.join(ROOT, "deploy/mariadb/replica"));
    const script = fs.readdirSync(replicaScripts as string).map((file) => fs.readFileSync(path.join(replicaScripts as string, file), "utf8")).join("\n");
    expect(script).toMatch(/MASTER_USE_GTID\s*=\s*slave_pos/);
    expect(script).toMatch(/START SLAVE/);
    expect(compose.services["mariadb-replica"]?.command).toContain("--read-only=1");
  });

  it("runs NATS with JetStream from the checked-in configuration, which says when it syncs to disk", () => {
    const config = mountedAt(compose.services.nats, "/etc/nats/nats.conf");
    expect(config).toBe(path.join(ROOT, "deploy/nats/nats.conf"));
    expect(fs.readFileSync(config as string, "utf8")).toMatch(/jetstream\s*\{[^}]*^\s*sync_interval:\s*(always|\d+s)\s*$/ms);
  });

  it("puts HAProxy in front of the api nodes with the rendering of the one template, and the nodes trust only it", () => {
    const haproxy = compose.services.haproxy;
    const mounted = mountedAt(haproxy, "/usr/local/etc/haproxy/haproxy.cfg");
    expect(mounted).toBe(COMPOSE_HAPROXY_CONFIG);
    expect(fs.readFileSync(COMPOSE_HAPROXY_CONFIG, "utf8")).toBe(renderHaproxyConfig(COMPOSE_HAPROXY_OPTIONS));

    for (const server of COMPOSE_HAPROXY_OPTIONS.apiServers) {
      const [host, port] = server.address.split(":");
      const node = compose.services[host ?? ""];
      expect({ host, services: node?.environment?.SERVICES, port: node?.environment?.PORT }).toEqual({ host, services: "api", port });
      const lbAddress = haproxy?.networks?.shoal?.ipv4_address;
      expect(lbAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(node?.environment?.TRUSTED_PROXIES).toBe(lbAddress);
    }
  });
});

describe("Dockerfile", () => {
  const dockerfile = fs.readFileSync(path.join(ROOT, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const finalStage = stages.at(-1) ?? "";

  it("holds glibc's malloc to two arenas, so that a worker gives back what image processing freed", () => {
    expect(finalStage).toMatch(/^ENV [^\n]*\bMALLOC_ARENA_MAX=2\b/m);
  });

  it("builds in one stage and runs from a Debian slim Node LTS image with Debian's ffmpeg", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:(22|24)-(bookworm|trixie)-slim$/m);
    expect(finalStage).toMatch(/^\$\{NODE_IMAGE\}\s*$/m);
    expect(finalStage).toMatch(/apt-get install [^\n]*\bffmpeg\b/);
  });

  it("installs only production dependencies in the image and runs as a non-root user with a liveness check", () => {
    expect(finalStage).toMatch(/^RUN npm ci --omit=dev\b/m);
    const user = /^USER (\S+)$/m.exec(finalStage)?.[1];
    expect(user).toBeDefined();
    expect(["root", "0"]).not.toContain(user);
    expect(finalStage).toMatch(/^HEALTHCHECK .*\/api\/health\/live/m);
    expect(finalStage).toMatch(/^CMD \["node", "dist\/server\.js"\]$/m);
  });

  it("leaves local state and dependencies out of the build context", () => {
    const ignored = fs.readFileSync(path.join(ROOT, ".dockerignore"), "utf8").split("\n");
    for (const entry of ["node_modules", "dist", ".env", "cluster-data", "data"]) expect(ignored).toContain(entry);
  });

  it("has a .env.example whose SHOAL_SECRET is long enough for cluster mode", () => {
    const example = execFileSync("sh", ["-c", ". ./.env.example && printf %s \"$SHOAL_SECRET\""], { cwd: ROOT, encoding: "utf8" });
    expect(example.length).toBeGreaterThanOrEqual(32);
  });
});

/**
 * The servers of the feed benchmark besides Shoal's nodes: the seed's stack (nginx + PHP-FPM 8.2, started and
 * stopped by ../shared/baselines/php/run.sh) and a small round-robin HAProxy in front of two api nodes.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { binaryPath } from "../scripts/services/binaries";
import { canConnect, freePort } from "../scripts/services/ports";
import { ServerProcess } from "../scripts/services/processes";
import { PHP_BASELINE_DIR } from "./feed-seed";

const run = promisify(execFile);

export interface PhpStack {
  readonly baseUrl: string;
  readonly dir: string;
  /** PHP-FPM children (pm = static). */
  readonly fpmChildren: number;
  stop(): Promise<void>;
}

/**
 * run.sh up, in `dir` (made readable to www-data, which nginx's workers and PHP-FPM's children run as),
 * against the database `seedsite` on 127.0.0.1:`mysqlPort`. The DSN holds `=`, which PHP-FPM's configuration
 * takes only inside double quotes: this run.sh writes `env[PDO_DSN] = "$PDO_DSN"`, so it is passed bare (quoted
 * once more, PHP-FPM refuses the file); with a run.sh that does not quote it, pass it as '"mysql:…"'.
 */
export async function startPhpStack(dir: string, mysqlPort: number, user: string, password: string, fpmChildren = 8): Promise<PhpStack> {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  const script = path.join(PHP_BASELINE_DIR, "run.sh");
  const port = await freePort();
  const env = {
    ...process.env,
    PHP_STATE: dir,
    PHP_PORT: String(port),
    PDO_DSN: phpDsn(script, `mysql:host=127.0.0.1;port=${mysqlPort};dbname=seedsite`),
    PDO_USER: user,
    PDO_PASS: password,
    FPM_CHILDREN: String(fpmChildren),
  };
  const stop = async () => {
    await run(script, ["down"], { env }).catch(() => undefined);
  };
  try {
    await run(script, ["up"], { env });
    await canConnect(port, 5000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { baseUrl: `http://127.0.0.1:${port}`, dir, fpmChildren, stop };
}

/** The DSN as run.sh needs it: quoted for PHP-FPM unless run.sh quotes it itself. */
function phpDsn(script: string, dsn: string): string {
  return /env\[PDO_DSN\] = "/.test(fs.readFileSync(script, "utf8")) ? dsn : `"${dsn}"`;
}

/** The configuration of the round-robin proxy: no logging, keep-alive on both sides. */
export function roundRobinConfig(port: number, serverPorts: readonly number[]): string {
  return [
    "global",
    "    maxconn 4096",
    "defaults",
    "    mode http",
    "    timeout connect 5s",
    "    timeout client 30s",
    "    timeout server 30s",
    "    option http-keep-alive",
    "frontend feed",
    `    bind 127.0.0.1:${port}`,
    "    default_backend api",
    "backend api",
    "    balance roundrobin",
    ...serverPorts.map((serverPort, index) => `    server api-${index + 1} 127.0.0.1:${serverPort}`),
    "",
  ].join("\n");
}

/** HAProxy (Debian package `haproxy`) in the foreground, round-robin over `serverPorts`. */
export async function startRoundRobin(dir: string, name: string, serverPorts: readonly number[]): Promise<{ baseUrl: string; server: ServerProcess }> {
  const port = await freePort();
  const configFile = path.join(dir, `${name}.cfg`);
  fs.writeFileSync(configFile, roundRobinConfig(port, serverPorts));
  const server = new ServerProcess({
    label: `haproxy ${name}`,
    command: binaryPath("haproxy"),
    args: () => ["-db", "-f", configFile],
    outputFile: path.join(dir, `${name}.log`),
    probe: () => canConnect(port),
    readyTimeoutMs: 15_000,
    stopTimeoutMs: 10_000,
  });
  await server.start();
  return { baseUrl: `http://127.0.0.1:${port}`, server };
}

/**
 * The seed's stack for the feed benchmark: nginx + PHP-FPM 8.2, started and stopped by ../shared/baselines/php/run.sh.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { canConnect, freePort } from "../scripts/services/ports";
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

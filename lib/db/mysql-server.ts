import { Kysely, MysqlDialect } from "kysely";
import { createPool } from "mysql2";
import type { Pool } from "mysql2";
import type { ReplicaHealth, ServerHealth } from "./database";
import { serverOf } from "./topology";

export function createMysqlPool(url: string, database: string | undefined, connectionLimit: number): Pool {
  const parsed = new URL(url);
  return createPool({
    host: parsed.hostname,
    port: Number(parsed.port || 3306),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database,
    connectionLimit,
    connectTimeout: 2000,
    enableKeepAlive: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    charset: "utf8mb4_bin",
  });
}

/** One server of a database with its connection pool and what the last probe or query saw. */
export class Server<DB> {
  readonly label: string;
  readonly db: Kysely<DB>;
  reachable = false;
  error: string | undefined = "not probed yet";

  constructor(
    readonly url: string,
    database: string,
    poolSize: number,
  ) {
    this.label = serverOf(url);
    this.db = new Kysely<DB>({ dialect: new MysqlDialect({ pool: createMysqlPool(url, database, poolSize) }) });
  }

  markReachable(): void {
    this.reachable = true;
    this.error = undefined;
  }

  markUnreachable(error: unknown): void {
    this.reachable = false;
    this.error = error instanceof Error ? error.message : String(error);
  }

  health(): ServerHealth {
    return this.error === undefined
      ? { server: this.label, reachable: this.reachable }
      : { server: this.label, reachable: this.reachable, error: this.error };
  }
}

export class Replica<DB> extends Server<DB> {
  inRotation = false;
  lagSeconds: number | null = null;

  override markUnreachable(error: unknown): void {
    super.markUnreachable(error);
    this.lagSeconds = null;
    this.inRotation = false;
  }

  override health(): ReplicaHealth {
    return { ...super.health(), lagSeconds: this.lagSeconds, inRotation: this.inRotation };
  }
}

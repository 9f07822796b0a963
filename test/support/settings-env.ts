import type { Env, Settings } from "../../config/settings";
import { parseSettings, SettingsError } from "../../config/settings";

// What the settings tests share: a working directory and a valid cluster environment, and how a refusal looks.

export const CWD = "/srv/shoal";

export const CLUSTER: Env = {
  SHOAL_MODE: "cluster",
  NATS_URL: "nats://nats:4222",
  REDIS_URL: "redis://cache:6379",
  MYSQL_PRIMARY_URL: "mysql://shoal:pw@db-primary:3306",
  S3_BUCKET: "shoal-media",
  SHOAL_SECRET: "0123456789abcdef0123456789abcdef",
};

/** The SettingsError that parseSettings throws for env; fails the test when it does not throw one. */
export function settingsError(env: Env): SettingsError {
  try {
    parseSettings(env, CWD);
  } catch (error) {
    expect(error).toBeInstanceOf(SettingsError);
    return error as SettingsError;
  }
  throw new Error(`parseSettings accepted ${JSON.stringify(env)}`);
}

export function expectOneLineNaming(error: SettingsError, variable: string): void {
  expect(error.variable).toBe(variable);
  expect(error.message.startsWith(`${variable}: `)).toBe(true);
  expect(error.message).not.toMatch(/[\r\n]/);
}

/** The MySQL settings of every database, failing when one is not MySQL. */
export function mysqlDatabases(settings: Settings) {
  const result: Record<string, { database: string; primaryUrl: string; replicaUrls: readonly string[]; poolSize: number }> = {};
  for (const [name, db] of Object.entries(settings.databases)) {
    if (db.kind !== "mysql") throw new Error(`${name} is ${db.kind}, expected mysql`);
    result[name] = { database: db.database, primaryUrl: db.primaryUrl, replicaUrls: db.replicaUrls, poolSize: db.poolSize };
  }
  return result;
}

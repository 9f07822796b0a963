/**
 * Promotes a replica to primary after the primary is lost, and tells every node to follow.
 *
 *   npm run db:promote -- --database <membership|media|site> [--replica <url or host:port>] [--force]
 *
 * Joins the cluster as a node without services (to broadcast the change), promotes the most
 * advanced replica (or the one named), stores the new topology in Redis for every database on the
 * same servers, and broadcasts it. Exit codes: 0 promoted, 1 refused or failed, 2 usage or settings error.
 */
import "dotenv/config";
import os from "node:os";
import { parseArgs } from "node:util";
import type { ServiceBroker } from "moleculer";
import { parseSettings, SettingsError } from "../config/settings";
import type { Settings } from "../config/settings";
import { describePromotion, promoteDatabase } from "../lib/db/promote-database";
import type { PromoteDatabaseOutcome, PromoteDatabaseRequest } from "../lib/db/promote-database";
import { createRedisClient } from "../lib/runtime";
import { DB_TOPOLOGY_CHANGED_EVENT } from "../lib/service-contracts";
import type { DbTopologyChanged } from "../lib/service-contracts";
import { createNode } from "../node";

const USAGE = "usage: npm run db:promote -- --database <membership|media|site> [--replica <url or host:port>] [--force]";
const REDIS_READY_TIMEOUT_MS = 10_000;

class UsageError extends Error {}

async function withRedis<T>(url: string, work: (redis: ReturnType<typeof createRedisClient>) => Promise<T>): Promise<T> {
  const redis = createRedisClient(url);
  redis.on("error", () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      if (redis.status === "ready") return resolve();
      const timer = setTimeout(() => reject(new Error(`Redis did not answer within ${REDIS_READY_TIMEOUT_MS / 1000} s`)), REDIS_READY_TIMEOUT_MS);
      redis.once("ready", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return await work(redis);
  } finally {
    redis.disconnect();
  }
}

/** Promotes, stores the topology, and broadcasts it to every node (used by this command and the REPL's `promote`). */
export async function promoteAndAnnounce(settings: Settings, broker: ServiceBroker, request: PromoteDatabaseRequest): Promise<PromoteDatabaseOutcome> {
  if (settings.cache.kind !== "redis") throw new Error("promotion needs SHOAL_MODE=cluster: embedded mode has no replicas");
  const outcome = await withRedis(settings.cache.url, (redis) => promoteDatabase(settings, redis, request));
  const event: DbTopologyChanged = { databases: outcome.databases, primary: outcome.primary };
  await broker.broadcast(DB_TOPOLOGY_CHANGED_EVENT, event);
  return outcome;
}

/** The REPL's `promote <database> [--replica <server>] [--force]` (see scripts/repl-commands.ts). */
export async function promoteFromRepl(broker: ServiceBroker, args: { readonly [name: string]: unknown }): Promise<void> {
  const options = (args.options ?? {}) as { readonly replica?: unknown; readonly force?: unknown };
  try {
    const outcome = await promoteAndAnnounce(parseSettings(process.env), broker, {
      database: String(args.database ?? ""),
      replica: typeof options.replica === "string" ? options.replica : undefined,
      force: options.force === true,
    });
    for (const line of describePromotion(outcome)) console.log(line);
  } catch (error) {
    console.error(`promote: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function parseCommandLine(argv: readonly string[]): PromoteDatabaseRequest & { help: boolean } {
  let values: { database?: string; replica?: string; force?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: { database: { type: "string" }, replica: { type: "string" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message.split("\n")[0]);
  }
  if (values.help !== true && (values.database === undefined || values.database === "")) throw new UsageError("--database is required");
  return { database: values.database ?? "", replica: values.replica, force: values.force === true, help: values.help === true };
}

async function main(): Promise<number> {
  const request = parseCommandLine(process.argv.slice(2));
  if (request.help) {
    console.log(USAGE);
    return 0;
  }
  const settings = parseSettings(process.env);
  if (settings.mode !== "cluster") throw new Error("promotion needs SHOAL_MODE=cluster: embedded mode has no replicas");
  const logLevel = process.env.LOG_LEVEL?.trim() ? settings.logLevel : "warn";
  const node = createNode({ ...settings, logLevel, services: [], nodeId: settings.nodeId ?? `db-promote-${os.hostname()}-${process.pid}` });
  try {
    await node.start();
    const outcome = await promoteAndAnnounce(settings, node.broker, request);
    for (const line of describePromotion(outcome)) console.log(line);
    return 0;
  } finally {
    await node.stop().catch(() => undefined);
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      const usage = error instanceof UsageError;
      console.error(`db:promote: ${error instanceof Error ? error.message : String(error)}${usage ? ` (${USAGE})` : ""}`);
      process.exit(usage || error instanceof SettingsError ? 2 : 1);
    },
  );
}

import type { Redis } from "ioredis";
import { DATABASE_NAMES } from "../../config/settings";
import type { DatabaseName, Settings } from "../../config/settings";
import { MariaDbPromotionPort } from "./mariadb-promotion-port";
import { PromotionRefused, promoteReplica } from "./promotion";
import type { PromotionResult } from "./promotion";
import { RedisFailoverLedger, RedisTopologyStore } from "./redis-topology-store";
import { resolveTopology, serverOf } from "./topology";

export interface PromoteDatabaseRequest {
  readonly database: string;
  /** A replica's mysql:// URL or host:port; default: the most advanced replica. */
  readonly replica?: string;
  readonly force: boolean;
}

export interface PromoteDatabaseOutcome extends PromotionResult {
  /** Every database on the same servers: they moved together. */
  readonly databases: readonly DatabaseName[];
}

/** How long the chosen replica may take to apply what it has received before the promotion is refused. */
const APPLY_TIMEOUT_MS = 30_000;

function replicaServer(value: string): string {
  return value.startsWith("mysql://") ? serverOf(value) : value;
}

/**
 * Promotes a replica of a database's servers and stores the new topology for every database on
 * those servers; the caller broadcasts the change. Throws PromotionRefused when nothing was changed.
 */
export async function promoteDatabase(settings: Settings, redis: Redis, request: PromoteDatabaseRequest): Promise<PromoteDatabaseOutcome> {
  if (!(DATABASE_NAMES as readonly string[]).includes(request.database)) {
    throw new PromotionRefused(`unknown database ${JSON.stringify(request.database)} (known: ${DATABASE_NAMES.join(", ")})`);
  }
  const name = request.database as DatabaseName;
  const configured = settings.databases[name];
  if (configured.kind !== "mysql") throw new PromotionRefused("Embedded mode has one SQLite file per database and no replica to promote.");
  const group = serverOf(configured.primaryUrl);
  const databases = DATABASE_NAMES.filter((each) => {
    const other = settings.databases[each];
    return other.kind === "mysql" && serverOf(other.primaryUrl) === group;
  });
  const store = new RedisTopologyStore(redis);
  const current = resolveTopology(configured, await store.load(name));
  if (current.ignored !== undefined) throw new PromotionRefused(`${current.ignored}.`);
  const primaryUrl = new URL(configured.primaryUrl);
  const port = new MariaDbPromotionPort({
    credentials: {
      user: settings.failover.adminUser ?? decodeURIComponent(primaryUrl.username),
      password: settings.failover.adminPassword ?? decodeURIComponent(primaryUrl.password),
    },
    semiSync: settings.failover.semiSync,
  });
  const result = await promoteReplica(port, new RedisFailoverLedger(redis, group), {
    primary: serverOf(current.urls.primaryUrl),
    replicas: current.urls.replicaUrls.map(serverOf),
    replica: request.replica === undefined ? undefined : replicaServer(request.replica),
    force: request.force,
    blockSeconds: settings.failover.blockSeconds,
    applyTimeoutMs: APPLY_TIMEOUT_MS,
  });
  const topology = { primary: result.primary, replicas: result.replicas, previousPrimary: result.previousPrimary, promotedAt: new Date().toISOString() };
  for (const each of databases) await store.save(each, topology);
  return { ...result, databases };
}

/** What the operator reads after a promotion. */
export function describePromotion(outcome: PromoteDatabaseOutcome): string[] {
  const lines = [
    `Promoted ${outcome.primary} to primary of ${outcome.databases.join(", ")} (was ${outcome.previousPrimary}).`,
    `Replicas now following it: ${outcome.replicas.filter((server) => !outcome.unreachable.includes(server)).join(", ") || "none"}.`,
  ];
  if (outcome.unreachable.length > 0) lines.push(`Could not be pointed at it (fix by hand): ${outcome.unreachable.join(", ")}.`);
  if (outcome.forced) lines.push("Forced: transactions the replica had received but not applied are lost.");
  lines.push(`${outcome.previousPrimary} is out of the topology; rejoin it as a replica only after checking it for transactions the others lack.`);
  return lines;
}

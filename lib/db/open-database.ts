import type { DatabaseName, DatabaseSettings, ReplicationSettings } from "../../config/settings";
import type { Database, DatabaseLogger } from "./database";
import { MysqlDatabase } from "./mysql-database";
import type { WriteMarkStore } from "./read-your-writes";
import { SqliteDatabase } from "./sqlite-database";
import type { TopologyStore } from "./topology";

export function createDatabase<DB>(
  name: DatabaseName,
  settings: DatabaseSettings,
  replication: ReplicationSettings,
  writeMarks: WriteMarkStore,
  logger: DatabaseLogger,
  topology?: TopologyStore,
): Database<DB> {
  if (settings.kind === "sqlite") {
    return new SqliteDatabase<DB>(name, settings.file, logger);
  }
  return new MysqlDatabase<DB>({
    name,
    database: settings.database,
    primaryUrl: settings.primaryUrl,
    replicaUrls: settings.replicaUrls,
    poolSize: settings.poolSize,
    thresholds: { maxLagSeconds: replication.maxLagSeconds, rejoinLagSeconds: replication.rejoinLagSeconds },
    probeIntervalMs: replication.probeIntervalMs,
    readYourWritesWaitMs: replication.readYourWritesWaitMs,
    readYourWritesWindowMs: replication.readYourWritesWindowMs,
    writeMarks,
    logger,
    loadTopology: topology ? () => topology.load(name) : undefined,
  });
}

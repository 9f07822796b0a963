import type { Context, ServiceSchema } from "moleculer";
import type { DatabaseName } from "../config/settings";
import type { Database } from "../lib/db/database";
import { isConnectionError } from "../lib/db/mysql-database";
import { retryUntilAvailable } from "../lib/retry";
import type { Runtime } from "../lib/runtime";
import { DB_TOPOLOGY_CHANGED_EVENT } from "../lib/service-contracts";
import type { DbTopologyChanged } from "../lib/service-contracts";
import { MIGRATIONS } from "../migrations";

/**
 * Gives a service its own logical database: opened when the service is created,
 * connected and migrated (retrying while the primary is unreachable) when it starts,
 * reported in the node's health, closed when it stops.
 */
export function databaseMixin<DB>(
  runtime: Runtime,
  name: DatabaseName,
  use: (db: Database<DB>) => void,
): Partial<ServiceSchema> {
  let db: Database<DB> | undefined;
  let ready = false;
  let stopping = false;
  const checkName = `database:${name}`;

  return {
    created() {
      db = runtime.createDatabase<DB>(name, this.logger);
      use(db);
      runtime.health.register(checkName, () =>
        ready && db ? { ...db.health() } : { status: "down", error: `starting: waiting for the ${name} database` },
      );
    },

    async started() {
      const database = db;
      if (!database) throw new Error(`${name} database was not created`);
      await retryUntilAvailable(
        async () => {
          await database.connect();
          await database.migrate(MIGRATIONS[name]);
        },
        {
          waitingFor: `the ${name} database primary`,
          isRetryable: isConnectionError,
          onRetry: (message) => this.logger.warn(message),
          shouldStop: () => stopping,
        },
      );
      ready = true;
    },

    async stopped() {
      stopping = true;
      ready = false;
      runtime.health.unregister(checkName);
      await db?.close();
    },

    events: {
      [DB_TOPOLOGY_CHANGED_EVENT]: {
        params: { databases: { type: "array", items: "string" }, primary: "string" },
        async handler(ctx: Context<DbTopologyChanged>) {
          // A node still starting reads the stored topology when it connects.
          if (!db || !ready || !ctx.params.databases.includes(name)) return;
          await db.refreshTopology();
        },
      },
    },

    actions: {
      /** Primary and replicas of this service's database, with lag and rotation state (for operators). */
      replicationStatus: {
        visibility: "public",
        params: { $$strict: true },
        handler() {
          if (!db) throw new Error(`${name} database was not created`);
          return { database: name, health: db.health(), routing: db.routingStats() };
        },
      },
    },
  };
}

import type { ServiceBroker } from "moleculer";
import type { CatalogueEntry } from "../lib/backups/catalogue";
import type { DatabaseHealth } from "../lib/db/database";
import { formatReplicaTable } from "../lib/ops/replica-table";
import type { NodeDatabaseStatus } from "../lib/ops/replica-table";
import { invalidateCache } from "../mixins/cache-invalidation.mixin";

const DATABASE_SERVICES = ["users", "media", "site"] as const;

interface ServiceEndpoint {
  name: string;
  nodeID: string;
  available?: boolean;
}

/** Asks every node that runs a database service how it sees that database's primary and replicas. */
export async function collectReplicaStatus(broker: ServiceBroker): Promise<NodeDatabaseStatus[]> {
  const services = broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true }) as ServiceEndpoint[];
  const targets = services.filter((service) => (DATABASE_SERVICES as readonly string[]).includes(service.name));
  const answers = await Promise.all(
    targets.map(async ({ name, nodeID }) => {
      const status = await broker.call<{ database: string; health: DatabaseHealth }, Record<string, never>>(
        `${name}.replicationStatus`,
        {},
        { nodeID },
      );
      return { nodeID, database: status.database, health: status.health };
    }),
  );
  return answers.sort((a, b) => a.database.localeCompare(b.database) || a.nodeID.localeCompare(b.nodeID));
}

export const replCommands = [
  {
    command: "replicas",
    description: "Show each database's primary and replicas: reachable, lag, in read rotation (as every node sees them)",
    async action(broker: ServiceBroker) {
      console.log(formatReplicaTable(await collectReplicaStatus(broker)));
    },
  },
  {
    command: "cache-clean <pattern>",
    description: "Remove cached entries matching a pattern (e.g. 'users.get:*' or '**') on every node",
    async action(broker: ServiceBroker, args: { pattern: string }) {
      await invalidateCache(broker, [args.pattern]);
      console.log(`Cleaned cache entries matching ${args.pattern}`);
    },
  },
  {
    command: "stats-backfill",
    description: "Compute past statistics snapshots from existing rows: every day from --from, and the hours still within retention",
    options: [{ option: "--from <date>", description: "First day to compute (ISO 8601, e.g. 2025-01-01)" }],
    async action(broker: ServiceBroker, args: { readonly options?: { readonly from?: string } }) {
      const from = args.options?.from;
      if (!from) {
        console.log("stats-backfill needs --from <date>, e.g. stats-backfill --from 2025-01-01");
        return;
      }
      const { periods } = await broker.call<{ periods: number }, { from: string }>("site.backfillSnapshots", { from }, { timeout: 0 });
      console.log(`Computed ${periods} snapshot periods from ${from}`);
    },
  },
  {
    command: "user-create <username> <email>",
    description: "Create an account (--admin: an administrator); prints its generated password once",
    options: [{ option: "--admin", description: "Give the account the admin role" }],
    async action(broker: ServiceBroker, args: { readonly [name: string]: unknown }) {
      // Loaded here so that this addition stays within the command list; see scripts/user-create.ts.
      const { userCreateFromRepl } = await import("./user-create");
      await userCreateFromRepl(broker, args);
    },
  },
  {
    command: "promote <database>",
    description: "Promote a replica to primary of a database (and every database on its servers); every node follows",
    options: [
      { option: "--replica <server>", description: "The replica to promote (URL or host:port); default: the most advanced" },
      { option: "--force", description: "Promote even a replica that has not applied all it received (those transactions are lost)" },
    ],
    async action(broker: ServiceBroker, args: { readonly [name: string]: unknown }) {
      const { promoteFromRepl } = await import("./db-promote");
      await promoteFromRepl(broker, args);
    },
  },
  {
    command: "reprocess <mediaId>",
    description: "Process a media item again (its variants are rebuilt and replaced)",
    async action(broker: ServiceBroker, args: { readonly [name: string]: unknown }) {
      // The operator acts as an admin; the action applies the same rules as the admin route.
      const { media } = await broker.call<{ media: { id: string; status: string } }, { id: string }>(
        "media.reprocess",
        { id: String(args.mediaId) },
        { meta: { user: { id: "operator", role: "admin", username: "operator" } } },
      );
      console.log(`${media.id} is ${media.status} again and queued for processing`);
    },
  },
  {
    command: "maintenance [state] [message...]",
    description: "Show the maintenance switch, or turn it on (changes answer 503 with the message; reads go on) or off, on every node",
    async action(broker: ServiceBroker, args: { state?: string; message?: string[] }) {
      if (args.state !== undefined && args.state !== "on" && args.state !== "off") {
        console.log("maintenance takes on or off, e.g. maintenance on Restoring the media database");
        return;
      }
      const message = args.message?.join(" ");
      const { maintenance } =
        args.state === undefined
          ? await broker.call<{ maintenance: { on: boolean; message: string; since: string | null } }, object>("api.maintenance", {})
          : await broker.call<{ maintenance: { on: boolean; message: string; since: string | null } }, object>("api.setMaintenance", {
              on: args.state === "on",
              ...(message ? { message } : {}),
            });
      console.log(maintenance.on ? `maintenance is on since ${maintenance.since ?? "?"}: ${maintenance.message}` : "maintenance is off");
    },
  },
  {
    command: "backups",
    description: "The backup catalogue: id, database, time, size and the last drill's outcome; then each primary's binlog archive and its gaps",
    async action(broker: ServiceBroker) {
      const { formatCatalogue } = await import("../lib/backups/catalogue-table");
      const { backups } = await broker.call<{ backups: CatalogueEntry[] }, object>("backup.list", {}, { meta: { user: { id: "operator", role: "admin", username: "operator" } } });
      console.log(formatCatalogue(backups));
      const { formatArchiveStatus } = await import("../lib/backups/cluster-point-in-time");
      const archive = await broker.call<{ problems: string[]; detail: unknown }, object>("backup.archiveStatus", {}).catch(() => undefined);
      for (const line of archive === undefined ? [] : formatArchiveStatus(archive)) console.log(line);
    },
  },
  {
    command: "backup-now [database]",
    description: "Back up one database (membership, media, site) or all now, then drill them; progress is printed as it goes",
    async action(broker: ServiceBroker, args: { readonly [name: string]: unknown }) {
      const { withBackupProgress } = await import("./backup-progress");
      const result = await withBackupProgress(broker, () =>
        broker.call<{ backups: { database: string; id: string; error?: string }[] }, object>("backup.backupNow", args.database === undefined ? {} : { database: String(args.database) }, { timeout: 0 }),
      );
      for (const backup of result.backups) console.log(`${backup.database}: ${backup.error === undefined ? `backup ${backup.id} stored` : `failed: ${backup.error}`}`);
    },
  },
  {
    command: "drill-now [database]",
    description: "Restore the newest backup of one database or all into scratch space and check it",
    async action(broker: ServiceBroker, args: { readonly [name: string]: unknown }) {
      const { withBackupProgress } = await import("./backup-progress");
      const drills = await withBackupProgress(broker, () =>
        broker.call<{ database: string; outcome: string; reason: string | null }[], object>("backup.drillNow", args.database === undefined ? {} : { database: String(args.database) }, { timeout: 0 }),
      );
      for (const drill of drills) console.log(`${drill.database}: drill ${drill.outcome}${drill.reason ? `: ${drill.reason}` : ""}`);
    },
  },
];

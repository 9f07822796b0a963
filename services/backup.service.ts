import type { Context, ServiceSchema } from "moleculer";
import { DATABASE_NAMES } from "../config/settings";
import type { DatabaseName } from "../config/settings";
import { authorize } from "../lib/auth/policy";
import { resolveBackupKey } from "../lib/backups/backup-key";
import { BackupOperations } from "../lib/backups/backup-operations";
import type { CataloguePort } from "../lib/backups/backup-operations";
import { backupStorageFor, drillScratchFor, dumpsFromSettings } from "../lib/backups/backup-setup";
import { clusterPointInTime } from "../lib/backups/cluster-point-in-time";
import { RedisTopologyStore } from "../lib/db/redis-topology-store";
import { mediaFilesToCopy } from "../lib/backups/object-files";
import { checkBucketVersioning } from "../lib/backups/object-versioning";
import { ConflictError } from "../lib/errors";
import type { Runtime } from "../lib/runtime";
import { DB_TOPOLOGY_CHANGED_EVENT } from "../lib/service-contracts";
import type { PeriodicTask } from "../lib/scheduling/periodic-task";
import { cronSchedule } from "../lib/scheduling/schedule";
import type { ShoalMeta } from "../moleculer.config";

/** Longer than any backup or drill of all three databases takes; there is no lease renewal. */
const LEASE_MS = 6 * 3600_000;
const LAST_VERIFIED_METRIC = "shoal.backup.last_verified_timestamp_seconds";
export const BACKUP_PROGRESS_EVENT = "backup.progress";

type Databases = { database?: DatabaseName };

/** Scheduled encrypted backups of the three databases and restore drills, one runner at a time cluster-wide. */
export function backupService(runtime: Runtime): ServiceSchema {
  const { settings } = runtime;
  let operations: BackupOperations;
  let ownStorage: { close(): Promise<void> } | undefined;
  let pointInTime: ReturnType<typeof clusterPointInTime>;
  const tasks: PeriodicTask[] = [];
  const drillAfterBackup = settings.backups.drillSchedule === undefined;

  return {
    name: "backup",

    created() {
      const key = resolveBackupKey(settings.mode, settings.backups.encryptionKey, settings.dataDir);
      if (key.kind === "data-directory") {
        this.logger.warn(`backups are encrypted with the key made in ${key.file}: keep a copy of it somewhere else, or set BACKUP_ENCRYPTION_KEY`);
      }
      if (key.kind === "missing") this.logger.error("BACKUP_ENCRYPTION_KEY is not set: no backups will be taken");
      const target = backupStorageFor(settings, runtime.storage, runtime.secret);
      if (target.own) ownStorage = target.storage;
      const topology = runtime.redis ? new RedisTopologyStore(runtime.redis) : undefined;
      pointInTime = clusterPointInTime({
        databases: settings.databases,
        account: { user: settings.failover.adminUser, password: settings.failover.adminPassword },
        storage: target.storage,
        key: key.kind === "configured" ? key.key : undefined,
        leaseLock: runtime.leaseLock,
        dataDir: settings.dataDir,
        flushIntervalMs: settings.backups.binlogFlushSeconds * 1000,
        // The archiver follows a promoted primary as the database services do.
        ...(topology ? { loadTopology: (database: DatabaseName) => topology.load(database) } : {}),
        log: this.logger,
      });
      const drillScratch = drillScratchFor(settings);
      const call = <T>(action: string, params: object): Promise<T> => this.broker.call<T, object>(`site.${action}`, params);
      const catalogue: CataloguePort = {
        backupStarted: (id, database, startedAt) => call("backupStarted", { id, database, startedAt }),
        backupSucceeded: (manifest, manifestKey, finishedAt) => call("backupSucceeded", { manifest, manifestKey, finishedAt }),
        backupFailed: (id, error, finishedAt) => call("backupFailed", { id, error, finishedAt }),
        backupRemoved: (id) => call("backupRemoved", { id }),
        recordDrill: (drill) => call("recordDrill", drill),
        verifiedIds: (database) => call("verifiedBackups", { database }),
        drillStatus: () => call("backupDrillStatus", {}),
        list: (limit) => call("backupCatalogue", { limit }),
      };
      operations = new BackupOperations({
        databases: DATABASE_NAMES,
        key,
        storage: target.storage,
        mediaObjects: runtime.storage,
        mediaFiles: mediaFilesToCopy(runtime.storage),
        startDump: dumpsFromSettings(settings),
        drillScratch: (database) => pointInTime?.withReplay(drillScratch(database)) ?? drillScratch(database),
        retention: settings.backups,
        maxUnverifiedHours: settings.backups.maxUnverifiedHours,
        catalogue,
        audit: async (action, detail) => {
          await call("recordAudit", { action, actorId: null, subjectId: null, ip: null, detail }).catch((error: unknown) =>
            this.logger.warn(`audit event ${action} not recorded: ${String(error)}`),
          );
        },
        logger: this.logger,
      });
      this.broker.metrics?.register({ type: "gauge", name: LAST_VERIFIED_METRIC, description: "When a restore drill last passed (Unix seconds)" });
    },

    async started() {
      const startedAt = Date.now();
      runtime.health.register(
        "backups",
        async () => {
          const check = await operations.health(startedAt).then((result) => pointInTime?.health(result) ?? result);
          const lastVerifiedAt = typeof check.lastVerifiedAt === "string" ? Date.parse(check.lastVerifiedAt) / 1000 : 0;
          this.broker.metrics?.set(LAST_VERIFIED_METRIC, lastVerifiedAt);
          return check;
        },
        { required: false },
      );
      const progress = (message: string): void => void this.broker.broadcast(BACKUP_PROGRESS_EVENT, { message });
      // S3 bucket versioning (the media files' own history): checked at start and before each backup; a warning under `backups`.
      const checkVersioning = () =>
        checkBucketVersioning(settings, (name, message) => operations.setWarning(name, message)).then((warnings) => {
          for (const warning of warnings) this.logger.warn(warning);
        });
      void checkVersioning().catch((error: unknown) => this.logger.warn(`bucket versioning not checked: ${String(error)}`));
      const backupThenDrill = async (databases?: readonly DatabaseName[]) => {
        await checkVersioning().catch((error: unknown) => this.logger.warn(`bucket versioning not checked: ${String(error)}`));
        const result = await operations.backup(databases, progress);
        const drills = drillAfterBackup ? await operations.drill(result.backups.filter((b) => !b.error).map((b) => b.database), progress) : [];
        return { ...result, drills };
      };
      tasks.push(
        runtime.periodicTasks.schedule({
          name: "backup",
          schedule: cronSchedule(settings.backups.schedule),
          run: () => backupThenDrill(),
          leaseMs: LEASE_MS,
          log: this.logger,
        }),
      );
      if (settings.backups.drillSchedule !== undefined) {
        tasks.push(
          runtime.periodicTasks.schedule({
            name: "backup-drill",
            schedule: cronSchedule(settings.backups.drillSchedule),
            run: () => operations.drill(undefined, progress),
            leaseMs: LEASE_MS,
            log: this.logger,
          }),
        );
      }
      if (pointInTime !== undefined) {
        pointInTime.archiving.start();
        tasks.push(
          runtime.periodicTasks.schedule({ name: "binlog-retention", schedule: { everyMs: 3600_000 }, run: () => pointInTime!.retention(), log: this.logger }),
        );
      }
      this.runExclusive = async <T>(lockName: string, work: () => Promise<T>): Promise<T> => {
        const release = await runtime.leaseLock(lockName).tryAcquire(LEASE_MS);
        if (release === undefined) throw new ConflictError(`a ${lockName === "backup" ? "backup" : "drill"} is already running on a node of this site`);
        try {
          return await work();
        } finally {
          await release();
        }
      };
      this.backupThenDrill = backupThenDrill;
      this.progress = progress;
    },

    async stopped() {
      runtime.health.unregister("backups");
      for (const task of tasks.splice(0)) await runtime.periodicTasks.unschedule(task);
      await pointInTime?.archiving.stop();
      await ownStorage?.close();
    },

    events: {
      /** After `db:promote`: the binlog archiver switches to the promoted primary. */
      [DB_TOPOLOGY_CHANGED_EVENT]: {
        async handler() {
          await pointInTime?.archiving.followTopology();
        },
      },
    },

    actions: {
      /** Operators (REPL): backs up one database or all, then drills them unless drills have a schedule of their own; waits for the end. */
      backupNow: {
        visibility: "public",
        timeout: 0,
        params: { $$strict: true, database: { type: "enum", values: [...DATABASE_NAMES], optional: true } },
        async handler(ctx: Context<Databases>) {
          const databases = ctx.params.database === undefined ? undefined : [ctx.params.database];
          return this.runExclusive("backup", () => this.backupThenDrill(databases));
        },
      },

      /** Operators (REPL): each primary's binlog archive, and its problems (gaps); read from storage on a node that does not run it. */
      archiveStatus: {
        visibility: "public",
        async handler() {
          return pointInTime === undefined ? { problems: [], detail: [] } : pointInTime.archiving.health();
        },
      },

      drillNow: {
        visibility: "public",
        timeout: 0,
        params: { $$strict: true, database: { type: "enum", values: [...DATABASE_NAMES], optional: true } },
        async handler(ctx: Context<Databases>) {
          const databases = ctx.params.database === undefined ? undefined : [ctx.params.database];
          return this.runExclusive("backup-drill", () => operations.drill(databases, this.progress));
        },
      },

      /** Admins: the catalogue, newest first. */
      list: {
        params: { $$strict: true, limit: { type: "number", integer: true, min: 1, max: 1000, convert: true, default: 100 } },
        async handler(ctx: Context<{ limit: number }, ShoalMeta>) {
          authorize(ctx.meta.user, "read", { kind: "backups" }, "backups");
          return { backups: await operations.list(ctx.params.limit) };
        },
      },

      /** Admins: starts a backup (and its drill) and answers at once; progress goes to the logs and the catalogue. */
      start: {
        params: { $$strict: true, database: { type: "enum", values: [...DATABASE_NAMES], optional: true } },
        async handler(ctx: Context<Databases, ShoalMeta>) {
          authorize(ctx.meta.user, "create", { kind: "backups" }, "backups");
          const release = await runtime.leaseLock("backup").tryAcquire(LEASE_MS);
          if (release === undefined) throw new ConflictError("a backup is already running on a node of this site");
          const databases = ctx.params.database === undefined ? [...DATABASE_NAMES] : [ctx.params.database];
          void this.backupThenDrill(databases)
            .catch((error: unknown) => this.logger.error(`backup started by ${ctx.meta.user?.id ?? "?"} failed: ${String(error)}`))
            .finally(() => release());
          ctx.meta.$statusCode = 202;
          return { started: true, databases };
        },
      },
    },
  };
}

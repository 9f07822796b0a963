import type { Context, ServiceSchema } from "moleculer";
import { authorize } from "../lib/auth/policy";
import type { SiteDatabase } from "../lib/db/schemas/site";
import type { Runtime } from "../lib/runtime";
import { AuditRepository } from "../lib/site/audit-repository";
import { SnapshotRepository } from "../lib/stats/snapshot-repository";
import type { ShoalMeta } from "../moleculer.config";
import { cacheInvalidationMixin } from "../mixins/cache-invalidation.mixin";
import { databaseMixin } from "../mixins/database.mixin";
import { backupCatalogueMixin } from "../mixins/backup-catalogue.mixin";
import { BackupCatalogue } from "../lib/backups/catalogue";
import { siteStatsMixin } from "../mixins/site-stats.mixin";
import { ULID_PATTERN } from "../lib/service-contracts";



/** Owner of the site database: audit log, metric snapshots and the statistics read from them, backup catalogue. */
export function siteService(runtime: Runtime): ServiceSchema {
  let audit: AuditRepository;
  let backups: BackupCatalogue;
  let snapshots: SnapshotRepository;

  return {
    name: "site",
    mixins: [
      // First: created after the database mixin (mixins are created last to first), stopped before it.
      siteStatsMixin(runtime, () => snapshots),
      databaseMixin<SiteDatabase>(runtime, "site", (db) => {
        audit = new AuditRepository(db);
        backups = new BackupCatalogue(db);
        snapshots = new SnapshotRepository(db);
      }),
      cacheInvalidationMixin,
      backupCatalogueMixin(() => backups),
    ],

    actions: {
      recordAudit: {
        visibility: "public",
        params: {
          $$strict: true,
          action: { type: "string", min: 1, max: 64 },
          actorId: { type: "string", max: 26, nullable: true },
          subjectId: { type: "string", max: 26, nullable: true },
          ip: { type: "string", max: 45, nullable: true },
          detail: { type: "object", optional: true },
        },
        async handler(ctx: Context<Parameters<AuditRepository["record"]>[0]>) {
          return { entry: await audit.record(ctx.params) };
        },
      },

      /** Admins only: the audit log, newest first. */
      listAudit: {
        params: {
          $$strict: true,
          cursor: { type: "string", pattern: ULID_PATTERN, optional: true, messages: { stringPattern: "is not a cursor from this list" } },
          limit: { type: "number", integer: true, min: 1, max: 200, convert: true, default: 50 },
        },
        async handler(ctx: Context<{ cursor?: string; limit: number }, ShoalMeta>) {
          authorize(ctx.meta.user, "read", { kind: "audit-log" }, "audit log");
          return audit.list(ctx.params.cursor, ctx.params.limit);
        },
      },
    },
  };
}

import type { Context, ServiceSchema } from "moleculer";
import { authorize } from "../lib/auth/policy";
import type { SiteDatabase } from "../lib/db/schemas/site";
import type { Runtime } from "../lib/runtime";
import { AuditRepository } from "../lib/site/audit-repository";
import type { ShoalMeta } from "../moleculer.config";
import { cacheInvalidationMixin } from "../mixins/cache-invalidation.mixin";
import { databaseMixin } from "../mixins/database.mixin";
import { ULID_PATTERN } from "../lib/service-contracts";



/** Owner of the site database: audit log, metric snapshots, backup catalogue. */
export function siteService(runtime: Runtime): ServiceSchema {
  let audit: AuditRepository;

  return {
    name: "site",
    mixins: [
      databaseMixin<SiteDatabase>(runtime, "site", (db) => {
        audit = new AuditRepository(db);
      }),
      cacheInvalidationMixin,
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

import type { Context, ServiceSchema } from "moleculer";
import type { BackupCatalogue, NewDrill } from "../lib/backups/catalogue";
import type { BackupManifest } from "../lib/backups/manifest";
import { DATABASE_NAMES } from "../config/settings";

const id = { type: "string", min: 1, max: 26 };
const database = { type: "enum", values: [...DATABASE_NAMES] };
const time = { type: "number", integer: true, min: 0 };

/** The site service's half of the backup catalogue: the backup service records and reads through these (services only). */
export function backupCatalogueMixin(catalogue: () => BackupCatalogue): Partial<ServiceSchema> {
  return {
    actions: {
      backupStarted: {
        visibility: "public",
        params: { $$strict: true, id, database, startedAt: time },
        handler: (ctx: Context<{ id: string; database: string; startedAt: number }>) =>
          catalogue().backupStarted(ctx.params.id, ctx.params.database, ctx.params.startedAt),
      },
      backupSucceeded: {
        visibility: "public",
        params: { $$strict: true, manifest: { type: "object" }, manifestKey: { type: "string", min: 1, max: 1024 }, finishedAt: time },
        handler: (ctx: Context<{ manifest: BackupManifest; manifestKey: string; finishedAt: number }>) =>
          catalogue().backupSucceeded(ctx.params.manifest, ctx.params.manifestKey, ctx.params.finishedAt),
      },
      backupFailed: {
        visibility: "public",
        params: { $$strict: true, id, error: { type: "string", max: 10_000 }, finishedAt: time },
        handler: (ctx: Context<{ id: string; error: string; finishedAt: number }>) =>
          catalogue().backupFailed(ctx.params.id, ctx.params.error, ctx.params.finishedAt),
      },
      backupRemoved: {
        visibility: "public",
        params: { $$strict: true, id },
        handler: (ctx: Context<{ id: string }>) => catalogue().removeBackup(ctx.params.id),
      },
      recordDrill: {
        visibility: "public",
        params: {
          $$strict: true,
          backupId: { ...id, nullable: true },
          database,
          startedAt: time,
          durationMs: time,
          bytes: time,
          outcome: { type: "enum", values: ["passed", "failed"] },
          reason: { type: "string", max: 10_000, nullable: true },
          missingObjects: { type: "number", integer: true, min: 0, nullable: true },
        },
        handler: (ctx: Context<NewDrill>) => catalogue().recordDrill(ctx.params),
      },
      verifiedBackups: {
        visibility: "public",
        params: { $$strict: true, database },
        handler: async (ctx: Context<{ database: string }>) => [...(await catalogue().verifiedIds(ctx.params.database))],
      },
      backupDrillStatus: {
        visibility: "public",
        params: { $$strict: true },
        handler: () => catalogue().drillStatus(),
      },
      backupCatalogue: {
        visibility: "public",
        params: { $$strict: true, limit: { type: "number", integer: true, min: 1, max: 1000, default: 100 } },
        handler: (ctx: Context<{ limit: number }>) => catalogue().list(ctx.params.limit),
      },
    },
  };
}

import type { Context, ServiceSchema } from "moleculer";
import { ForbiddenError, UnauthenticatedError } from "../lib/errors";
import { MAINTENANCE_CHANGED_EVENT } from "../lib/ops/maintenance";
import type { MaintenanceState, MaintenanceSwitch } from "../lib/ops/maintenance";
import type { ShoalMeta } from "../moleculer.config";

interface SetMaintenance {
  on: boolean;
  message?: string;
  retryAfterSeconds?: number;
}

function requireAdmin(ctx: Context<unknown, ShoalMeta>): string {
  const user = ctx.meta.user;
  if (!user) throw new UnauthenticatedError();
  if (user.role !== "admin") throw new ForbiddenError("Only admins can see or change the maintenance switch.");
  return user.id;
}

/** The maintenance switch on the api service: GET and PUT /api/admin/maintenance (admins; the REPL calls them without a user), and the broadcast that tells every node. */
export function maintenanceMixin(maintenance: MaintenanceSwitch): Partial<ServiceSchema> {
  return {
    actions: {
      maintenance: {
        params: { $$strict: true },
        async handler(ctx: Context<unknown, ShoalMeta>) {
          if (ctx.meta.user !== undefined) requireAdmin(ctx);
          return { maintenance: await maintenance.current() };
        },
      },

      setMaintenance: {
        params: {
          $$strict: true,
          on: { type: "boolean" },
          message: { type: "string", min: 1, max: 500, trim: true, optional: true },
          retryAfterSeconds: { type: "number", integer: true, min: 1, max: 86_400, optional: true },
        },
        async handler(ctx: Context<SetMaintenance, ShoalMeta>) {
          // Through HTTP the gateway always sets meta.user (null when signed out); the REPL and other services set none.
          const by = ctx.meta.user !== undefined ? requireAdmin(ctx) : "operator";
          const state = await maintenance.set({ ...ctx.params, by });
          await ctx.broadcast(MAINTENANCE_CHANGED_EVENT, state);
          this.logger.warn(state.on ? `maintenance switched on by ${by}: changes answer 503` : `maintenance switched off by ${by}`);
          await ctx
            .call("site.recordAudit", { action: state.on ? "maintenance.on" : "maintenance.off", actorId: by.slice(0, 26), subjectId: null, ip: ctx.meta.ip ?? null, detail: { message: state.message } })
            .catch((error: unknown) => this.logger.warn(`audit event for maintenance not recorded: ${String(error)}`));
          return { maintenance: state };
        },
      },
    },

    events: {
      [MAINTENANCE_CHANGED_EVENT]: {
        handler(ctx: Context<MaintenanceState>) {
          maintenance.learn(ctx.params);
        },
      },
    },
  };
}

import type { Context, ServiceSchema } from "moleculer";
import { cacheKeyPattern } from "../lib/cache/cache-keys";
import type { MembershipDatabase } from "../lib/db/schemas/membership";
import { NotFoundError } from "../lib/errors";
import type { Runtime } from "../lib/runtime";
import type { Role } from "../lib/users/user-repository";
import { UserRepository } from "../lib/users/user-repository";
import { accountView, publicProfile } from "../lib/users/user-views";
import { cacheInvalidationMixin, invalidateCache } from "../mixins/cache-invalidation.mixin";
import { databaseMixin } from "../mixins/database.mixin";

const userId = { type: "string", pattern: /^[0-9A-HJKMNP-TV-Z]{26}$/, messages: { stringPattern: "is not a user id" } };

export function usersService(runtime: Runtime): ServiceSchema {
  let users: UserRepository;

  return {
    name: "users",
    mixins: [
      databaseMixin<MembershipDatabase>(runtime, "membership", (db) => {
        users = new UserRepository(db);
      }),
      cacheInvalidationMixin,
    ],

    actions: {
      /** Public profile of one account. */
      get: {
        cache: { keys: ["id"], lock: { enabled: true } },
        params: { $$strict: true, id: userId },
        async handler(ctx: Context<{ id: string }>) {
          const user = await users.findById(ctx.params.id);
          if (!user) throw new NotFoundError("user");
          return { user: publicProfile(user) };
        },
      },

      /** Creates an account without a password; the accounts API and operator commands build on it. */
      create: {
        visibility: "public",
        params: {
          $$strict: true,
          username: { type: "string", min: 3, max: 32, pattern: /^[\p{L}\p{N}_.-]+$/u, trim: true },
          email: { type: "email", max: 254 },
          role: { type: "enum", values: ["user", "admin"], default: "user" },
        },
        async handler(ctx: Context<{ username: string; email: string; role: Role }>) {
          const user = await users.create({ ...ctx.params, quotaBytes: runtime.settings.userQuotaBytes });
          return { user: accountView(user) };
        },
      },

      setRole: {
        visibility: "public",
        params: { $$strict: true, id: userId, role: { type: "enum", values: ["user", "admin"] } },
        async handler(ctx: Context<{ id: string; role: Role }>) {
          if (!(await users.setRole(ctx.params.id, ctx.params.role))) throw new NotFoundError("user");
          await invalidateCache(this.broker, [cacheKeyPattern("users.get", ctx.params.id)]);
          const user = await users.findById(ctx.params.id);
          if (!user) throw new NotFoundError("user");
          return { user: accountView(user) };
        },
      },
    },
  };
}

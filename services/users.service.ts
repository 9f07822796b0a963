import type { Context, Service, ServiceSchema } from "moleculer";
import { authorize } from "../lib/auth/policy";
import { PASSWORD_MAX_LENGTH } from "../lib/auth/passwords";
import { csrfTokenFor } from "../lib/auth/session-tokens";
import { cacheKeyPattern } from "../lib/cache/cache-keys";
import type { Database } from "../lib/db/database";
import type { MembershipDatabase } from "../lib/db/schemas/membership";
import { NotFoundError, UnauthenticatedError } from "../lib/errors";
import type { Runtime } from "../lib/runtime";
import type { PeriodicTask } from "../lib/scheduling/periodic-task";
import { Accounts, generatePassword } from "../lib/users/accounts";
import type { AuditEntry, RequestOrigin, SignedIn } from "../lib/users/accounts";
import { publicProfilesOf } from "../lib/users/profile-batch";
import type { ProfileCache, PublicProfile } from "../lib/users/profile-batch";
import { SessionRepository } from "../lib/users/session-repository";
import type { Role } from "../lib/users/user-repository";
import { UserRepository } from "../lib/users/user-repository";
import { accountView, publicProfile } from "../lib/users/user-views";
import { UserStatsRepository } from "../lib/stats/user-stats-repository";
import type { ShoalMeta } from "../moleculer.config";
import { cacheInvalidationMixin, invalidateCache } from "../mixins/cache-invalidation.mixin";
import { databaseMixin } from "../mixins/database.mixin";
import { SESSIONS_ENDED_EVENT, ulidParam, USER_DELETED_EVENT } from "../lib/service-contracts";
import type { SessionsEnded, UserDeleted } from "../lib/service-contracts";

const ulid = ulidParam("user");
const username = {
  type: "string",
  trim: true,
  min: 3,
  max: 32,
  // Letters may carry up to two combining marks (Hindi, Tamil, decomposed accents), but not a pile of them.
  pattern: /^(?:[\p{L}\p{N}_.-]\p{M}{0,2})+$/u,
  messages: { stringPattern: "may contain only letters, digits, '.', '_' and '-'" },
};
const email = { type: "email", max: 254, normalize: false };
// Longer than the policy allows, so that the policy (not the validator) explains the limit.
const password = { type: "string", min: 1, max: PASSWORD_MAX_LENGTH * 4 };
const SESSION_SWEEP_INTERVAL_MS = 15 * 60_000;
const quotaBytes = { type: "number", integer: true, positive: true, max: Number.MAX_SAFE_INTEGER };
const reservationIdParam = { type: "string", min: 1, max: 64, pattern: /^[a-z]+:[A-Za-z0-9_-]+$/ };

type UsersContext<P = Record<string, never>> = Context<P, ShoalMeta>;

function originOf(ctx: UsersContext<unknown>): RequestOrigin {
  return { ip: ctx.meta.ip ?? null, userAgent: ctx.meta.userAgent ?? null };
}

function requireUser(ctx: UsersContext<unknown>): { id: string; role: Role } {
  if (!ctx.meta.user) throw new UnauthenticatedError();
  return ctx.meta.user;
}

export function usersService(runtime: Runtime): ServiceSchema {
  let membership: Database<MembershipDatabase>;
  let users: UserRepository;
  let accounts: Accounts;
  let sweeps: PeriodicTask<number>[] = [];
  const { settings } = runtime;
  const replicaLagWindowMs = settings.replication.maxLagSeconds * 1000;

  return {
    name: "users",
    mixins: [
      databaseMixin<MembershipDatabase>(runtime, "membership", (db) => {
        membership = db;
      }),
      cacheInvalidationMixin,
    ],

    created() {
      users = new UserRepository(membership);
      const audit = (entry: AuditEntry): Promise<void> =>
        this.broker.call("site.recordAudit", entry).then(
          () => undefined,
          (error: Error) => this.logger.error(`audit entry ${entry.action} could not be recorded: ${error.message}`),
        );
      accounts = new Accounts({
        users,
        sessions: new SessionRepository(membership),
        rateLimits: runtime.rateLimits,
        sessionSettings: settings.sessions,
        quotaBytes: settings.userQuotaBytes,
        audit,
      });
    },

    started() {
      const schedule = { everyMs: SESSION_SWEEP_INTERVAL_MS };
      sweeps = [
        runtime.periodicTasks.schedule({ name: "session-sweep", schedule, log: this.logger, run: () => accounts.deleteExpiredSessions() }),
        runtime.periodicTasks.schedule({ name: "quota-reservation-sweep", schedule, log: this.logger, run: () => accounts.releaseExpiredReservations() }),
      ];
    },

    async stopped() {
      await Promise.all(sweeps.map((task) => runtime.periodicTasks.unschedule(task)));
    },

    methods: {
      /** Hands a new session to the gateway (cookie) and the client (token). */
      signedIn(ctx: UsersContext<unknown>, signedIn: SignedIn) {
        ctx.meta.$setSession = { token: signedIn.token, maxAgeSeconds: settings.sessions.lifetimeSeconds };
        return { user: accountView(signedIn.user), token: signedIn.token, csrfToken: csrfTokenFor(runtime.secret, signedIn.sessionId) };
      },

      async forgetSessions(sessionIds: readonly string[], userId?: string) {
        const patterns = sessionIds.map((id) => cacheKeyPattern("users.resolveSession", id));
        if (userId) patterns.push(cacheKeyPattern("users.get", userId));
        if (patterns.length > 0) await invalidateCache(this.broker, patterns, { againAfterMs: replicaLagWindowMs });
      },

      /** Forgets the ended sessions (and the account, if it changed), then tells every api node to drop their sockets. */
      async sessionsEnded(ended: SessionsEnded, accountChanged = false) {
        await this.forgetSessions(ended.sessionIds, accountChanged ? ended.userId : undefined);
        if (ended.sessionIds.length === 0) return;
        // The sessions have ended either way; a socket the broadcast misses still ends at its session's end.
        await this.broker.broadcast(SESSIONS_ENDED_EVENT, ended).catch((error: Error) => this.logger.warn(`${SESSIONS_ENDED_EVENT} not broadcast: ${error.message}`));
      },
    },

    actions: {
      /** Members and their activity for a snapshot period [from, to) (the site service's statistics; not routed). */
      statsWindow: {
        visibility: "public",
        params: { $$strict: true, from: { type: "number", integer: true, min: 0 }, to: { type: "number", integer: true, min: 0 } },
        handler(ctx: Context<{ from: number; to: number }>) {
          return new UserStatsRepository(membership).window(ctx.params.from, ctx.params.to);
        },
      },

      register: {
        params: { $$strict: true, username, email, password },
        async handler(this: UsersThis, ctx: UsersContext<{ username: string; email: string; password: string }>) {
          const signedIn = await accounts.register(ctx.params, originOf(ctx));
          ctx.meta.$statusCode = 201;
          ctx.meta.$location = "/api/users/me";
          return this.signedIn(ctx, signedIn);
        },
      },

      login: {
        params: { $$strict: true, login: { type: "string", trim: true, min: 1, max: 254 }, password },
        async handler(this: UsersThis, ctx: UsersContext<{ login: string; password: string }>) {
          return this.signedIn(ctx, await accounts.login(ctx.params, originOf(ctx)));
        },
      },

      logout: {
        params: { $$strict: true },
        async handler(this: UsersThis, ctx: UsersContext) {
          ctx.meta.$clearSession = true;
          ctx.meta.$statusCode = 204;
          const sessionId = ctx.meta.session?.id;
          const userId = ctx.meta.user?.id;
          if (!sessionId || !userId) return null;
          const session = await accounts.resolveSession(sessionId);
          if (session) await accounts.logout(session, originOf(ctx));
          await this.sessionsEnded({ userId, sessionIds: [sessionId], reason: "signed_out" });
          return null;
        },
      },

      me: {
        params: { $$strict: true },
        async handler(ctx: UsersContext) {
          const actor = requireUser(ctx);
          authorize(actor, "read", { kind: "account", id: actor.id }, "account");
          const user = await users.findById(actor.id);
          if (!user) throw new UnauthenticatedError();
          return { user: accountView(user) };
        },
      },

      changePassword: {
        params: { $$strict: true, currentPassword: password, newPassword: password },
        async handler(this: UsersThis, ctx: UsersContext<{ currentPassword: string; newPassword: string }>) {
          const actor = requireUser(ctx);
          authorize(actor, "update", { kind: "account", id: actor.id }, "account");
          const ended = await accounts.changePassword({ userId: actor.id, sessionId: ctx.meta.session?.id }, ctx.params, originOf(ctx));
          await this.sessionsEnded({ userId: actor.id, sessionIds: ended, reason: "password_changed" });
          ctx.meta.$statusCode = 204;
          return null;
        },
      },

      deleteMe: {
        params: { $$strict: true, password },
        async handler(this: UsersThis, ctx: UsersContext<{ password: string }>) {
          const actor = requireUser(ctx);
          authorize(actor, "delete", { kind: "account", id: actor.id }, "account");
          const ended = await accounts.deleteAccount(actor.id, ctx.params.password, originOf(ctx));
          await this.sessionsEnded({ userId: actor.id, sessionIds: ended, reason: "account_deleted" }, true);
          const deleted: UserDeleted = { userId: actor.id, deletedAt: new Date().toISOString() };
          await this.broker.emit(USER_DELETED_EVENT, deleted);
          ctx.meta.$clearSession = true;
          ctx.meta.$statusCode = 204;
          return null;
        },
      },

      /** Public profile of one account. */
      get: {
        cache: { keys: ["id"], lock: { enabled: true } },
        params: { $$strict: true, id: ulid },
        async handler(ctx: UsersContext<{ id: string }>) {
          const user = await users.findById(ctx.params.id);
          if (!user) throw new NotFoundError("user");
          return { user: publicProfile(user) };
        },
      },

      /**
       * Public profiles of many accounts (the owners on a page of media) in one call, for other services (not
       * routed): each cached as users.get caches it, so the same writes clean it; ids without an account are left out.
       */
      getMany: {
        visibility: "public",
        params: { $$strict: true, ids: { type: "array", items: ulid, max: 100 } },
        async handler(this: Service, ctx: UsersContext<{ ids: string[] }>) {
          const cacher = this.broker.cacher;
          const keyOf = (id: string) => (cacher as NonNullable<typeof cacher>).getCacheKey("users.get", { id }, {}, ["id"]);
          const cache: ProfileCache = cacher
            ? {
                async get(id) {
                  const entry = (await cacher.get(keyOf(id))) as { user?: PublicProfile } | null;
                  return entry?.user ?? undefined;
                },
                async set(id, profile) {
                  await cacher.set(keyOf(id), { user: profile });
                },
              }
            : { get: async () => undefined, set: async () => undefined };
          return { users: await publicProfilesOf(ctx.params.ids, cache, (ids) => users.findByIds(ids)) };
        },
      },

      /** The gateway's session lookup (requests, and sockets at their session's end); cached, and cleaned whenever a session ends or is touched. */
      resolveSession: {
        visibility: "public",
        cache: { keys: ["sessionId"], lock: { enabled: true } },
        params: { $$strict: true, sessionId: { type: "string", length: 64, pattern: /^[0-9a-f]{64}$/ } },
        async handler(ctx: UsersContext<{ sessionId: string }>) {
          const found = await accounts.resolveSession(ctx.params.sessionId);
          if (!found) return null;
          const { session, user } = found;
          return {
            session: { id: session.id, createdAt: session.created_at, lastSeenAt: session.last_seen_at, expiresAt: session.expires_at },
            user,
          };
        },
      },

      touchSession: {
        visibility: "public",
        params: { $$strict: true, sessionId: { type: "string", length: 64, pattern: /^[0-9a-f]{64}$/ } },
        async handler(this: UsersThis, ctx: UsersContext<{ sessionId: string }>) {
          await accounts.touchSession(ctx.params.sessionId);
          await this.forgetSessions([ctx.params.sessionId]);
          return null;
        },
      },

      /** Operators only (not routed): creates an account of any role; without a password one is generated and returned once. */
      create: {
        visibility: "public",
        params: {
          $$strict: true,
          username,
          email,
          password: { ...password, optional: true },
          role: { type: "enum", values: ["user", "admin"], default: "user" },
        },
        async handler(ctx: UsersContext<{ username: string; email: string; password?: string; role: Role }>) {
          const chosen = ctx.params.password ?? generatePassword();
          const user = await accounts.createByOperator({ ...ctx.params, password: chosen }, ctx.meta.user?.id ?? null);
          return { user: accountView(user), ...(ctx.params.password ? {} : { generatedPassword: chosen }) };
        },
      },

      /** For the upload pipeline (not routed): holds quota for an upload in progress; 413 quota_exceeded when it does not fit. */
      reserveQuota: {
        visibility: "public",
        params: {
          $$strict: true,
          reservationId: reservationIdParam,
          userId: ulid,
          bytes: { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER },
          expiresAt: { type: "number", integer: true, positive: true },
        },
        handler(ctx: UsersContext<{ reservationId: string; userId: string; bytes: number; expiresAt: number }>) {
          return accounts.reserveQuota(ctx.params);
        },
      },

      /** The upload was stored: its reservation becomes used quota of its real size. */
      commitReservation: {
        visibility: "public",
        params: { $$strict: true, reservationId: reservationIdParam, bytes: quotaBytes },
        handler(ctx: UsersContext<{ reservationId: string; bytes: number }>) {
          return accounts.commitReservation(ctx.params.reservationId, ctx.params.bytes);
        },
      },

      /** The upload was refused or cancelled; idempotent. */
      releaseReservation: {
        visibility: "public",
        params: { $$strict: true, reservationId: reservationIdParam },
        handler(ctx: UsersContext<{ reservationId: string }>) {
          return accounts.releaseReservation(ctx.params.reservationId);
        },
      },

      /** For the media service (not routed): gives quota back, never below zero; null for an unknown account. */
      releaseQuota: {
        visibility: "public",
        params: { $$strict: true, userId: ulid, bytes: quotaBytes },
        handler(ctx: UsersContext<{ userId: string; bytes: number }>) {
          return accounts.releaseQuota(ctx.params.userId, ctx.params.bytes);
        },
      },

      /** Operators only (not routed). A change of role ends the account's sessions. */
      setRole: {
        visibility: "public",
        params: { $$strict: true, id: ulid, role: { type: "enum", values: ["user", "admin"] } },
        async handler(this: UsersThis, ctx: UsersContext<{ id: string; role: Role }>) {
          const { user, endedSessionIds } = await accounts.setRole(ctx.meta.user?.id ?? null, ctx.params.id, ctx.params.role, originOf(ctx));
          await this.sessionsEnded({ userId: user.id, sessionIds: endedSessionIds, reason: "role_changed" }, true);
          return { user: accountView(user) };
        },
      },
    },
  };
}

interface UsersThis {
  broker: ServiceSchema["broker"];
  signedIn(ctx: UsersContext<unknown>, signedIn: SignedIn): { user: ReturnType<typeof accountView>; token: string; csrfToken: string };
  forgetSessions(sessionIds: readonly string[], userId?: string): Promise<void>;
  sessionsEnded(ended: SessionsEnded, accountChanged?: boolean): Promise<void>;
}

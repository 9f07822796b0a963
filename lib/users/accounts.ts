import { randomBytes } from "node:crypto";
import { ulid } from "ulid";
import type { SessionSettings } from "../../config/settings";
import { passwordProblem, hashPassword, verifyPassword } from "../auth/passwords";
import { newSessionTimes } from "../auth/session-lifetime";
import { newSessionToken } from "../auth/session-tokens";
import { runWithConsistencyKey } from "../db/read-your-writes";
import { AppError, ConflictError, NotFoundError, ValidationError } from "../errors";
import type { RateLimits } from "../security/rate-limits";
import { normalizeEmail, usernameKey } from "./identity";
import type { SessionRepository, SessionWithUser } from "./session-repository";
import type { QuotaUsage, Role, UserRepository, UserRow } from "./user-repository";

export interface AuditEntry {
  readonly action: string;
  readonly actorId: string | null;
  readonly subjectId: string | null;
  readonly ip: string | null;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface RequestOrigin {
  readonly ip: string | null;
  readonly userAgent: string | null;
}

export interface SignedIn {
  readonly user: UserRow;
  readonly token: string;
  readonly sessionId: string;
}

export interface AccountsOptions {
  readonly users: UserRepository;
  readonly sessions: SessionRepository;
  readonly rateLimits: RateLimits;
  readonly sessionSettings: SessionSettings;
  readonly quotaBytes: number;
  readonly audit: (entry: AuditEntry) => Promise<void>;
  readonly now?: () => number;
}

export class InvalidCredentialsError extends AppError {
  constructor() {
    super(401, "invalid_credentials", "The username/email or password is wrong.");
  }
}

export class QuotaExceededError extends AppError {
  constructor() {
    super(413, "quota_exceeded", "This upload would exceed your storage quota.");
  }
}

/** Sign-up, sign-in, sessions and account changes; knows nothing of HTTP or Moleculer. */
export class Accounts {
  private readonly now: () => number;

  constructor(private readonly options: AccountsOptions) {
    this.now = options.now ?? Date.now;
  }

  async register(input: { username: string; email: string; password: string }, origin: RequestOrigin): Promise<SignedIn> {
    if (origin.ip) await this.options.rateLimits.consumeRegistration(origin.ip);
    const user = await this.createAccount({ ...input, role: "user" });
    await this.audit("account.registered", user.id, user.id, origin.ip);
    return this.startSession(user, origin);
  }

  /** Creates an account (operators: any role). Throws ValidationError or ConflictError with the field at fault. */
  async createAccount(input: { username: string; email: string; password: string; role: Role }): Promise<UserRow> {
    const problem = passwordProblem(input.password, input);
    if (problem) throw new ValidationError("The password is not accepted.", { password: problem });
    const { users } = this.options;
    if (await users.findByLogin(usernameKey(input.username))) {
      throw new ConflictError("That username is taken.", { username: "is taken" });
    }
    if (await users.findByLogin(normalizeEmail(input.email))) {
      throw new ConflictError("An account with that email already exists.", { email: "is already registered" });
    }
    const id = ulid(this.now());
    const passwordHash = await hashPassword(input.password);
    return runWithConsistencyKey(id, () =>
      users.create({ id, username: input.username, email: input.email, role: input.role, quotaBytes: this.options.quotaBytes, passwordHash }),
    );
  }

  /** An account made by an operator (any role, including the first admin); audited like every account change. */
  async createByOperator(input: { username: string; email: string; password: string; role: Role }, actorId: string | null): Promise<UserRow> {
    const user = await this.createAccount(input);
    await this.audit("account.created", actorId, user.id, null, { role: user.role, by: actorId ? "admin" : "operator" });
    return user;
  }

  async login(input: { login: string; password: string }, origin: RequestOrigin): Promise<SignedIn> {
    const { users, rateLimits } = this.options;
    const user = await users.findByLogin(input.login);
    // Unknown logins are throttled too, under their own key, so timing and limits do not reveal which exist.
    const accountKey = user?.id ?? `unknown:${usernameKey(input.login)}`;
    const attempt = await rateLimits.beginLoginAttempt(accountKey, origin.ip ?? "unknown");
    const verified = (await verifyPassword(user?.password_hash ?? null, input.password)) && user !== undefined;
    const { lockedOut } = await attempt.settle(verified);
    if (!verified || !user) {
      await this.audit("auth.login_failed", null, user?.id ?? null, origin.ip, { login: input.login.slice(0, 254) });
      if (lockedOut && user) await this.audit("auth.lockout", null, user.id, origin.ip);
      throw new InvalidCredentialsError();
    }
    await this.audit("auth.login", user.id, user.id, origin.ip);
    return this.startSession(user, origin);
  }

  async logout(session: SessionWithUser, origin: RequestOrigin): Promise<void> {
    await this.options.sessions.delete(session.session.id);
    await this.audit("auth.logout", session.user.id, session.user.id, origin.ip);
  }

  /** Changes the password and ends every other session; returns the ids of the ended sessions. */
  async changePassword(
    actor: { userId: string; sessionId: string | undefined },
    input: { currentPassword: string; newPassword: string },
    origin: RequestOrigin,
  ): Promise<string[]> {
    const user = await this.confirmPassword(actor.userId, input.currentPassword, "currentPassword", origin);
    const problem = passwordProblem(input.newPassword, user);
    if (problem) throw new ValidationError("The new password is not accepted.", { newPassword: problem });
    await this.options.users.setPasswordHash(user.id, await hashPassword(input.newPassword));
    const ended = await this.options.sessions.deleteAllForUser(user.id, actor.sessionId);
    await this.audit("account.password_changed", user.id, user.id, origin.ip, { sessionsEnded: ended.length });
    return ended;
  }

  /** Deletes the account and its sessions; returns the ids of the ended sessions. */
  async deleteAccount(userId: string, password: string, origin: RequestOrigin): Promise<string[]> {
    const user = await this.confirmPassword(userId, password, "password", origin);
    const ended = await this.options.users.deleteWithSessions(user.id);
    await this.audit("account.deleted", user.id, user.id, origin.ip);
    return ended;
  }

  /**
   * Gives the account another role. A change ends all of its sessions, so that new rights start, and old
   * ones stop, with a fresh sign-in. Returns the account as changed and the ids of the ended sessions.
   */
  async setRole(actorId: string | null, userId: string, role: Role, origin: RequestOrigin): Promise<{ user: UserRow; endedSessionIds: string[] }> {
    const { users } = this.options;
    const user = await users.findById(userId);
    const changed = user && (await users.changeRoleEndingSessions(userId, role));
    if (!user || !changed) throw new NotFoundError("user");
    await this.audit("account.role_changed", actorId, userId, origin.ip, { from: changed.before, to: role, sessionsEnded: changed.endedSessionIds.length });
    return { user: { ...user, role }, endedSessionIds: changed.endedSessionIds };
  }

  /** Holds quota for an upload in progress; throws QuotaExceededError (413) and changes nothing when it does not fit. */
  async reserveQuota(reservation: { reservationId: string; userId: string; bytes: number; expiresAt: number }): Promise<QuotaUsage> {
    const usage = await this.options.users.reserve({ ...reservation, id: reservation.reservationId });
    if (usage === undefined) throw new NotFoundError("user");
    if (usage === "exceeded") throw new QuotaExceededError();
    return usage;
  }

  /** The upload is stored: its reservation becomes `bytes` of used quota. */
  async commitReservation(reservationId: string, bytes: number): Promise<QuotaUsage> {
    const usage = await this.options.users.commit(reservationId, bytes);
    if (usage === "exceeded") throw new QuotaExceededError();
    if (usage === "unknown") throw new AppError(409, "reservation_expired", "This upload took too long and its reservation expired; upload it again.");
    return usage;
  }

  /** Idempotent: releasing twice, or after a commit, gives nothing back twice. */
  async releaseReservation(reservationId: string): Promise<{ released: boolean }> {
    return { released: await this.options.users.release(reservationId) };
  }

  /** Gives bytes back (an item deleted, a duplicate not kept); null when the account no longer exists, which is not an error here. */
  async releaseQuota(userId: string, bytes: number): Promise<QuotaUsage | null> {
    return (await this.options.users.releaseBytes(userId, bytes)) ?? null;
  }

  /** Gives back the quota of uploads abandoned past their expiry; returns how many. */
  async releaseExpiredReservations(): Promise<number> {
    const expired = await this.options.users.expiredReservations(this.now(), 500);
    let released = 0;
    for (const id of expired) if (await this.options.users.release(id)) released++;
    return released;
  }

  resolveSession(sessionId: string): Promise<SessionWithUser | undefined> {
    return this.options.sessions.findWithUser(sessionId);
  }

  touchSession(sessionId: string): Promise<void> {
    return this.options.sessions.touch(sessionId, this.now());
  }

  deleteExpiredSessions(): Promise<number> {
    return this.options.sessions.deleteExpired(this.now(), this.options.sessionSettings.idleTimeoutSeconds * 1000);
  }

  private async confirmPassword(userId: string, password: string, field: string, origin: RequestOrigin): Promise<UserRow> {
    const { users, rateLimits } = this.options;
    const user = await users.findById(userId);
    if (!user) throw new NotFoundError("account");
    const attempt = await rateLimits.beginLoginAttempt(user.id, origin.ip ?? "unknown");
    const verified = await verifyPassword(user.password_hash, password);
    const { lockedOut } = await attempt.settle(verified);
    if (!verified) {
      if (lockedOut) await this.audit("auth.lockout", user.id, user.id, origin.ip);
      throw new ValidationError("The password is wrong.", { [field]: "is not your current password" });
    }
    return user;
  }

  private async startSession(user: UserRow, origin: RequestOrigin): Promise<SignedIn> {
    const { token, sessionId } = newSessionToken();
    const times = newSessionTimes(this.now(), this.options.sessionSettings);
    await this.options.sessions.create({
      id: sessionId,
      user_id: user.id,
      created_at: times.createdAt,
      last_seen_at: times.lastSeenAt,
      expires_at: times.expiresAt,
      ip: origin.ip,
      user_agent: origin.userAgent?.slice(0, 512) ?? null,
    });
    return { user, token, sessionId };
  }

  private audit(action: string, actorId: string | null, subjectId: string | null, ip: string | null, detail?: Record<string, unknown>) {
    return this.options.audit({ action, actorId, subjectId, ip, detail });
  }
}

/** A password for accounts made by operators without one: shown once, to be changed by its owner. */
export function generatePassword(): string {
  return randomBytes(18).toString("base64url");
}

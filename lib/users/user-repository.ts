import { sql } from "kysely";
import type { Transaction } from "kysely";
import { ulid } from "ulid";
import type { Database } from "../db/database";
import type { MembershipDatabase, UsersTable } from "../db/schemas/membership";
import { isUniqueViolation } from "../db/unique-violation";
import { ConflictError } from "../errors";
import { normalizeEmail, usernameKey } from "./identity";

export type UserRow = UsersTable;
export type Role = UsersTable["role"];

/** Storage used and allowed, in bytes. */
export interface QuotaUsage {
  readonly usedBytes: number;
  readonly quotaBytes: number;
}

export interface NewUser {
  /** Chosen by the caller when it must know the id before the write (for read-your-writes). */
  readonly id?: string;
  readonly username: string;
  readonly email: string;
  readonly role: Role;
  readonly quotaBytes: number;
  readonly passwordHash?: string | null;
}

export class UserRepository {
  constructor(
    private readonly db: Database<MembershipDatabase>,
    private readonly now: () => number = Date.now,
  ) {}

  findById(id: string): Promise<UserRow | undefined> {
    return this.db.read((db) => db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst());
  }

  /** The accounts among `ids` that exist, in no particular order; one query. */
  findByIds(ids: readonly string[]): Promise<UserRow[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.db.read((db) => db.selectFrom("users").selectAll().where("id", "in", [...ids]).execute());
  }

  async create(input: NewUser): Promise<UserRow> {
    const at = this.now();
    const row: UserRow = {
      id: input.id ?? ulid(at),
      username: input.username.trim().normalize("NFC"),
      username_key: usernameKey(input.username),
      email: input.email.trim().normalize("NFC"),
      email_key: normalizeEmail(input.email),
      password_hash: input.passwordHash ?? null,
      role: input.role,
      quota_bytes: input.quotaBytes,
      used_bytes: 0,
      created_at: at,
      updated_at: at,
    };
    try {
      await this.db.write((trx) => trx.insertInto("users").values(row).execute());
    } catch (error) {
      if (isUniqueViolation(error)) {
        // Two sign-ups raced past the earlier checks; the index name says which field collided.
        const field = String((error as Error).message).includes("email_key") ? "email" : "username";
        throw new ConflictError(`That ${field} is already taken.`, { [field]: "is taken" });
      }
      throw error;
    }
    return row;
  }

  /**
   * By username or email, compared in normalised form. Read from the primary: whoever signs
   * in (or signs up) right after an account was made, through any node, must find it.
   */
  findByLogin(login: string): Promise<UserRow | undefined> {
    const key = usernameKey(login);
    return this.db.readLatest((db) =>
      db
        .selectFrom("users")
        .selectAll()
        .where((eb) => eb.or([eb("username_key", "=", key), eb("email_key", "=", normalizeEmail(login))]))
        .executeTakeFirst(),
    );
  }

  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.db.write((trx) =>
      trx.updateTable("users").set({ password_hash: passwordHash, updated_at: this.now() }).where("id", "=", id).execute(),
    );
  }

  /** Removes the account and all its sessions in one transaction; returns the ids of the sessions removed. */
  async deleteWithSessions(id: string): Promise<string[]> {
    return this.db.write(async (trx) => {
      const sessions = await trx.selectFrom("sessions").select("id").where("user_id", "=", id).execute();
      await trx.deleteFrom("sessions").where("user_id", "=", id).execute();
      await trx.deleteFrom("users").where("id", "=", id).execute();
      return sessions.map((session) => session.id);
    });
  }

  /**
   * Holds `bytes` of the user's quota under a reservation: added to the used bytes only if
   * they stay within the quota, in one statement, so that concurrent uploads cannot together
   * overshoot it. "exceeded" when they do not fit; undefined when there is no such user.
   * Reserving an id twice holds the bytes once.
   */
  async reserve(reservation: { id: string; userId: string; bytes: number; expiresAt: number }): Promise<QuotaUsage | "exceeded" | undefined> {
    return this.db.write(async (trx) => {
      const existing = await trx.selectFrom("quota_reservations").select("id").where("id", "=", reservation.id).executeTakeFirst();
      if (!existing) {
        const added = await addBytes(trx, reservation.userId, reservation.bytes);
        if (!added) return (await quotaUsage(trx, reservation.userId)) ? "exceeded" : undefined;
        await trx
          .insertInto("quota_reservations")
          .values({ id: reservation.id, user_id: reservation.userId, bytes: reservation.bytes, expires_at: reservation.expiresAt })
          .execute();
      }
      return quotaUsage(trx, reservation.userId);
    });
  }

  /**
   * Ends a reservation, keeping `bytes` as used (the upload's real size, which may differ
   * from what was reserved). "exceeded" when more bytes no longer fit (the reservation is
   * kept); "unknown" when the reservation has expired or never existed.
   */
  async commit(reservationId: string, bytes: number): Promise<QuotaUsage | "exceeded" | "unknown"> {
    return this.db.write(async (trx) => {
      const reservation = await trx.selectFrom("quota_reservations").selectAll().where("id", "=", reservationId).executeTakeFirst();
      if (!reservation) return "unknown";
      const delta = bytes - Number(reservation.bytes);
      if (delta > 0 && !(await addBytes(trx, reservation.user_id, delta))) return "exceeded";
      if (delta < 0) await subtractBytes(trx, reservation.user_id, -delta);
      await trx.deleteFrom("quota_reservations").where("id", "=", reservationId).execute();
      return (await quotaUsage(trx, reservation.user_id)) ?? "unknown";
    });
  }

  /** Gives a reservation's bytes back; false when there was none (already committed, released or swept). */
  async release(reservationId: string): Promise<boolean> {
    return this.db.write(async (trx) => {
      const reservation = await trx.selectFrom("quota_reservations").selectAll().where("id", "=", reservationId).executeTakeFirst();
      if (!reservation) return false;
      await subtractBytes(trx, reservation.user_id, Number(reservation.bytes));
      await trx.deleteFrom("quota_reservations").where("id", "=", reservationId).execute();
      return true;
    });
  }

  expiredReservations(now: number, limit: number): Promise<string[]> {
    return this.db
      .read((db) => db.selectFrom("quota_reservations").select("id").where("expires_at", "<=", now).limit(limit).execute())
      .then((rows) => rows.map((row) => row.id));
  }

  /** Takes `bytes` off the used bytes, never below zero; undefined when there is no such user. */
  async releaseBytes(id: string, bytes: number): Promise<QuotaUsage | undefined> {
    return this.db.write(async (trx) => {
      await subtractBytes(trx, id, bytes);
      return quotaUsage(trx, id);
    });
  }

  /**
   * Gives the user another role and, when it differs, ends all of their sessions in the same transaction.
   * Returns the role before and the ids of the ended sessions; undefined when there is no such user.
   */
  async changeRoleEndingSessions(id: string, role: Role): Promise<{ before: Role; endedSessionIds: string[] } | undefined> {
    return this.db.write(async (trx) => {
      const user = await trx.selectFrom("users").select("role").where("id", "=", id).executeTakeFirst();
      if (!user) return undefined;
      const changed = await trx.updateTable("users").set({ role, updated_at: this.now() }).where("id", "=", id).where("role", "!=", role).executeTakeFirst();
      if (changed.numUpdatedRows === 0n) return { before: user.role, endedSessionIds: [] };
      const sessions = await trx.selectFrom("sessions").select("id").where("user_id", "=", id).execute();
      await trx.deleteFrom("sessions").where("user_id", "=", id).execute();
      return { before: user.role, endedSessionIds: sessions.map((session) => session.id) };
    });
  }

  /** Returns false when there is no such user. */
  async setRole(id: string, role: Role): Promise<boolean> {
    const result = await this.db.write((trx) =>
      trx.updateTable("users").set({ role, updated_at: this.now() }).where("id", "=", id).executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }
}

async function quotaUsage(trx: Transaction<MembershipDatabase>, id: string): Promise<QuotaUsage | undefined> {
  const row = await trx.selectFrom("users").select(["used_bytes", "quota_bytes"]).where("id", "=", id).executeTakeFirst();
  return row ? { usedBytes: Number(row.used_bytes), quotaBytes: Number(row.quota_bytes) } : undefined;
}

async function addBytes(trx: Transaction<MembershipDatabase>, userId: string, bytes: number): Promise<boolean> {
  // An UPDATE that changes nothing reports no row on MySQL: nothing to add always fits.
  if (bytes === 0) return (await quotaUsage(trx, userId)) !== undefined;
  const result = await trx
    .updateTable("users")
    .set({ used_bytes: sql<number>`used_bytes + ${bytes}` })
    .where("id", "=", userId)
    .where(sql<boolean>`used_bytes + ${bytes} <= quota_bytes`)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

async function subtractBytes(trx: Transaction<MembershipDatabase>, userId: string, bytes: number): Promise<void> {
  await trx
    .updateTable("users")
    .set({ used_bytes: sql<number>`case when used_bytes > ${bytes} then used_bytes - ${bytes} else 0 end` })
    .where("id", "=", userId)
    .execute();
}

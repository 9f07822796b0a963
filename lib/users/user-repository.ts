import { ulid } from "ulid";
import type { Database } from "../db/database";
import type { MembershipDatabase, UsersTable } from "../db/schemas/membership";
import { isUniqueViolation } from "../db/unique-violation";
import { ConflictError } from "../errors";
import { normalizeEmail, usernameKey } from "./identity";

export type UserRow = UsersTable;
export type Role = UsersTable["role"];

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

  /** By username or email, compared in normalised form. */
  findByLogin(login: string): Promise<UserRow | undefined> {
    const key = usernameKey(login);
    return this.db.read((db) =>
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

  /** Returns false when there is no such user. */
  async setRole(id: string, role: Role): Promise<boolean> {
    const result = await this.db.write((trx) =>
      trx.updateTable("users").set({ role, updated_at: this.now() }).where("id", "=", id).executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }
}

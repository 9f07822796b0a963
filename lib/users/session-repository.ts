import type { Database } from "../db/database";
import type { MembershipDatabase, SessionsTable } from "../db/schemas/membership";

export type SessionRow = SessionsTable;

export interface SessionWithUser {
  readonly session: SessionRow;
  readonly user: { readonly id: string; readonly username: string; readonly role: "user" | "admin" };
}

export class SessionRepository {
  constructor(private readonly db: Database<MembershipDatabase>) {}

  async create(row: SessionRow): Promise<void> {
    await this.db.write((trx) => trx.insertInto("sessions").values(row).execute());
  }

  /** Read from the primary: a session ended a moment ago must not be found on a lagging replica (and cached). */
  async findWithUser(sessionId: string): Promise<SessionWithUser | undefined> {
    const row = await this.db.readLatest((db) =>
      db
        .selectFrom("sessions")
        .innerJoin("users", "users.id", "sessions.user_id")
        .selectAll("sessions")
        .select(["users.username as username", "users.role as role"])
        .where("sessions.id", "=", sessionId)
        .executeTakeFirst(),
    );
    if (!row) return undefined;
    const { username, role, ...session } = row;
    return { session, user: { id: session.user_id, username, role } };
  }

  async touch(sessionId: string, at: number): Promise<void> {
    await this.db.write((trx) => trx.updateTable("sessions").set({ last_seen_at: at }).where("id", "=", sessionId).execute());
  }

  async delete(sessionId: string): Promise<boolean> {
    const result = await this.db.write((trx) => trx.deleteFrom("sessions").where("id", "=", sessionId).executeTakeFirst());
    return result.numDeletedRows > 0n;
  }

  /** Removes the user's sessions except one (or all); returns the ids removed. */
  async deleteAllForUser(userId: string, except?: string): Promise<string[]> {
    return this.db.write(async (trx) => {
      let query = trx.selectFrom("sessions").select("id").where("user_id", "=", userId);
      if (except !== undefined) query = query.where("id", "!=", except);
      const ids = (await query.execute()).map((row) => row.id);
      if (ids.length > 0) await trx.deleteFrom("sessions").where("id", "in", ids).execute();
      return ids;
    });
  }

  /** Removes sessions past their lifetime or idle longer than allowed. */
  async deleteExpired(now: number, idleTimeoutMs: number): Promise<number> {
    const result = await this.db.write((trx) =>
      trx
        .deleteFrom("sessions")
        .where((eb) => eb.or([eb("expires_at", "<=", now), eb("last_seen_at", "<=", now - idleTimeoutMs)]))
        .executeTakeFirst(),
    );
    return Number(result.numDeletedRows);
  }
}

import { sql } from "kysely";
import type { Database } from "../db/database";
import type { MembershipDatabase } from "../db/schemas/membership";

const DAY_MS = 24 * 3600_000;

/** What the membership database says about the period ending at `to`. */
export interface UsersWindow {
  readonly total: number;
  readonly new: number;
  /** Members with a session used in the day, week and month (30 days) before `to`. */
  readonly activeDaily: number;
  readonly activeWeekly: number;
  readonly activeMonthly: number;
}

/**
 * Activity comes from sessions: a session created before `to` and last seen after the window's start was
 * used in it. Exact for the period just ended; for periods long past (a backfill) it counts only the
 * sessions that still exist, and a session last seen later is counted as active then.
 */
export class UserStatsRepository {
  constructor(private readonly db: Database<MembershipDatabase>) {}

  window(from: number, to: number): Promise<UsersWindow> {
    return this.db.read(async (db) => {
      const users = await db
        .selectFrom("users")
        .select([sql<number>`count(*)`.as("total"), sql<number>`sum(case when created_at >= ${from} then 1 else 0 end)`.as("new")])
        .where("created_at", "<", to)
        .executeTakeFirst();
      const active = async (days: number) => {
        const row = await db
          .selectFrom("sessions")
          .select(sql<number>`count(distinct user_id)`.as("count"))
          .where("created_at", "<", to)
          .where("last_seen_at", ">=", to - days * DAY_MS)
          .executeTakeFirst();
        return Number(row?.count ?? 0);
      };
      return {
        total: Number(users?.total ?? 0),
        new: Number(users?.new ?? 0),
        activeDaily: await active(1),
        activeWeekly: await active(7),
        activeMonthly: await active(30),
      };
    });
  }
}

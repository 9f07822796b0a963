import type { Migrations } from "../../lib/db/database";
import * as usersAndSessions from "./0001_users_and_sessions";
import * as quotaReservations from "./0002_quota_reservations";

export const membershipMigrations: Migrations = {
  "0001_users_and_sessions": usersAndSessions,
  "0002_quota_reservations": quotaReservations,
};

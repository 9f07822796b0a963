import type { Migrations } from "../../lib/db/database";
import * as usersAndSessions from "./0001_users_and_sessions";

export const membershipMigrations: Migrations = {
  "0001_users_and_sessions": usersAndSessions,
};

import type { DatabaseName } from "../config/settings";
import type { Migrations } from "../lib/db/database";
import { mediaMigrations } from "./media";
import { membershipMigrations } from "./membership";
import { siteMigrations } from "./site";

export const MIGRATIONS: Readonly<Record<DatabaseName, Migrations>> = {
  membership: membershipMigrations,
  media: mediaMigrations,
  site: siteMigrations,
};

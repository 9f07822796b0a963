import type { ServiceSchema } from "moleculer";
import type { SiteDatabase } from "../lib/db/schemas/site";
import type { Runtime } from "../lib/runtime";
import { cacheInvalidationMixin } from "../mixins/cache-invalidation.mixin";
import { databaseMixin } from "../mixins/database.mixin";

/** Owner of the site database: audit log, metric snapshots, backup catalogue. */
export function siteService(runtime: Runtime): ServiceSchema {
  return {
    name: "site",
    mixins: [databaseMixin<SiteDatabase>(runtime, "site", () => undefined), cacheInvalidationMixin],
  };
}

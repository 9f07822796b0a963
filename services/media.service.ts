import type { ServiceSchema } from "moleculer";
import type { MediaDatabase } from "../lib/db/schemas/media";
import type { Runtime } from "../lib/runtime";
import { cacheInvalidationMixin } from "../mixins/cache-invalidation.mixin";
import { databaseMixin } from "../mixins/database.mixin";

/** Owner of the media database: the catalogue of uploads, their variants and processing state. */
export function mediaService(runtime: Runtime): ServiceSchema {
  return {
    name: "media",
    mixins: [databaseMixin<MediaDatabase>(runtime, "media", () => undefined), cacheInvalidationMixin],
  };
}

import type { Migrations } from "../../lib/db/database";
import * as mediaAndVariants from "./0001_media_and_variants";
import * as uniqueContentAndTombstones from "./0002_unique_content_and_tombstones";
import * as processingState from "./0003_processing_state";

export const mediaMigrations: Migrations = {
  "0001_media_and_variants": mediaAndVariants,
  "0002_unique_content_and_tombstones": uniqueContentAndTombstones,
  "0003_processing_state": processingState,
};

import type { Migrations } from "../../lib/db/database";
import * as mediaAndVariants from "./0001_media_and_variants";

export const mediaMigrations: Migrations = {
  "0001_media_and_variants": mediaAndVariants,
};

import type { Migrations } from "../../lib/db/database";
import * as mediaAndVariants from "./0001_media_and_variants";
import * as uniqueContentAndTombstones from "./0002_unique_content_and_tombstones";
import * as processingState from "./0003_processing_state";
import * as readyFeedAndTombstoneAge from "./0004_ready_feed_and_tombstone_age";
import * as viewCountsAndProcessingTimes from "./0005_view_counts_and_processing_times";
import * as popularFeed from "./0006_popular_feed";
import * as claimToken from "./0007_claim_token";

export const mediaMigrations: Migrations = {
  "0001_media_and_variants": mediaAndVariants,
  "0002_unique_content_and_tombstones": uniqueContentAndTombstones,
  "0003_processing_state": processingState,
  "0004_ready_feed_and_tombstone_age": readyFeedAndTombstoneAge,
  "0005_view_counts_and_processing_times": viewCountsAndProcessingTimes,
  "0006_popular_feed": popularFeed,
  "0007_claim_token": claimToken,
};

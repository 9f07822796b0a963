import type { MediaKind } from "../../../config/settings";

/** Tables of the media database. Times are milliseconds since the epoch. */
export interface MediaTable {
  id: string;
  owner_id: string;
  kind: MediaKind;
  title: string | null;
  description: string | null;
  visibility: "private" | "unlisted" | "public";
  status: "uploaded" | "processing" | "ready" | "failed";
  reason: string | null;
  original_key: string;
  bytes: number;
  mime: string;
  sha256: string;
  width: number | null;
  height: number | null;
  duration_seconds: number | null;
  placeholder: string | null;
  /** What the client said the file was (type, name): recorded for support, never trusted. */
  declared_mime: string | null;
  original_name: string | null;
  /** Processing attempts made so far (bounded by JOB_MAX_ATTEMPTS). */
  attempts: number;
  /** Latest progress reported by a worker; null until one reports. */
  progress_stage: string | null;
  progress_percent: number | null;
  created_at: number;
  updated_at: number;
  /** Running totals, flushed in batches from the view counters (default 0). */
  views?: number;
  unique_viewers?: number;
  /** When the latest processing attempt started, and when the item became ready or failed. */
  processing_started_at?: number | null;
  finished_at?: number | null;
  /** The token of the claim that started the latest attempt (lib/jobs/job-state.ts). */
  claim_token?: string | null;
}

/** Views and new unique viewers (first view of the day) of one item in one hour. */
export interface MediaViewHoursTable {
  media_id: string;
  /** Start of the hour, milliseconds since the epoch. */
  hour: number;
  views: number;
  unique_viewers: number;
}

/** View batches already applied (their ids), so that a batch applied again counts once. */
export interface MediaViewFlushesTable {
  id: string;
  applied_at: number;
}

export interface VariantsTable {
  media_id: string;
  name: string;
  object_key: string;
  mime: string;
  width: number | null;
  height: number | null;
  bytes: number;
  duration_seconds: number | null;
  created_at: number;
}

/** A deleted media item: lets a repeated DELETE succeed for its owner, and holds the quota still to give back. */
export interface MediaTombstonesTable {
  id: string;
  owner_id: string;
  bytes: number;
  /** Null until the bytes have been given back to the owner's quota (or there is no owner left to give them to). */
  quota_released_at: number | null;
  deleted_at: number;
}

export interface MediaDatabase {
  media: MediaTable;
  variants: VariantsTable;
  media_tombstones: MediaTombstonesTable;
  media_view_hours: MediaViewHoursTable;
  media_view_flushes: MediaViewFlushesTable;
}

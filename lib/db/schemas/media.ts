/** Tables of the media database. Times are milliseconds since the epoch. */
export interface MediaTable {
  id: string;
  owner_id: string;
  kind: "image" | "video" | "audio";
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
  created_at: number;
  updated_at: number;
}

export interface VariantsTable {
  media_id: string;
  name: string;
  object_key: string;
  mime: string;
  width: number | null;
  height: number | null;
  bytes: number;
  created_at: number;
}

export interface MediaDatabase {
  media: MediaTable;
  variants: VariantsTable;
}

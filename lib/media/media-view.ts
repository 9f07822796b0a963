import type { MediaKind } from "../../config/settings";
import type { MediaTable, VariantsTable } from "../db/schemas/media";

export type MediaRow = MediaTable;
export type VariantRow = VariantsTable;
export type MediaVisibility = MediaRow["visibility"];
export type MediaStatus = MediaRow["status"];

export interface VariantJson {
  readonly name: string;
  readonly mime: string;
  readonly width: number | null;
  readonly height: number | null;
  readonly bytes: number;
  readonly url: string;
}

/** A media item as the API shows it. Fields not known (yet) are null. */
export interface MediaJson {
  readonly id: string;
  readonly kind: MediaKind;
  readonly status: MediaStatus;
  readonly reason: string | null;
  readonly title: string | null;
  readonly description: string | null;
  readonly visibility: MediaVisibility;
  readonly mime: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly width: number | null;
  readonly height: number | null;
  readonly durationSeconds: number | null;
  readonly placeholder: string | null;
  readonly variants: readonly VariantJson[];
  /** Only for the owner: a short-lived link to the original as uploaded. */
  readonly originalUrl: string | null;
  /** Live processing progress; null until processing reports it. */
  readonly progress: { readonly stage: string; readonly percent: number } | null;
  readonly owner: { readonly id: string; readonly username: string | null };
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Only for the owner: views by others, and unique viewers (each counted once a day), flushed every few seconds. */
  readonly views?: number;
  readonly uniqueViewers?: number;
}

/** What is needed besides the rows, already resolved (usernames, URLs). */
export interface ViewParts {
  readonly variants: readonly (VariantRow & { readonly url: string })[];
  readonly originalUrl: string | null;
  readonly username: string | null;
}

/** mysql2 returns a BIGINT beyond 2^53 as a string (supportBigNumbers); coerce so the JSON always has numbers. */
function numberOrNull(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}

export function toMediaJson(row: MediaRow, parts: ViewParts): MediaJson {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    reason: row.reason,
    title: row.title,
    description: row.description,
    visibility: row.visibility,
    mime: row.mime,
    bytes: Number(row.bytes),
    sha256: row.sha256,
    width: numberOrNull(row.width),
    height: numberOrNull(row.height),
    durationSeconds: numberOrNull(row.duration_seconds),
    placeholder: row.placeholder,
    variants: [...parts.variants]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((variant) => ({
        name: variant.name,
        mime: variant.mime,
        width: numberOrNull(variant.width),
        height: numberOrNull(variant.height),
        bytes: Number(variant.bytes),
        url: variant.url,
      })),
    originalUrl: parts.originalUrl,
    progress: row.progress_stage === null ? null : { stage: row.progress_stage, percent: Number(row.progress_percent ?? 0) },
    owner: { id: row.owner_id, username: parts.username },
    createdAt: new Date(Number(row.created_at)).toISOString(),
    updatedAt: new Date(Number(row.updated_at)).toISOString(),
  };
}

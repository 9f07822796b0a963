/**
 * Listing cursors. A page is cut by (created_at, id), newest first: the id breaks ties
 * between items created in the same millisecond, so the order is total and a cursor
 * points between two items exactly. Items inserted while someone pages are newer than
 * the first page and so never shift the pages that follow (nothing skipped or repeated).
 * The popular feed is cut the same way by (views, id), most viewed first (see PopularPosition).
 * The cursor is opaque to clients (base64url of a small JSON array) so that its shape
 * can change without breaking them.
 */

export interface ListPosition {
  readonly createdAt: number;
  readonly id: string;
}

/** The characters an encoded cursor can contain; for the params check. */
export const CURSOR_PATTERN = /^[A-Za-z0-9_-]{1,200}$/;
const MEDIA_ID = /^[A-Za-z0-9_-]{21}$/;

/**
 * A position in the popular feed: ordered by (views, id), most viewed first. Its cursor is a
 * three-element array starting with "views", so that a cursor of one order is refused by the other.
 */
export interface PopularPosition {
  readonly views: number;
  readonly id: string;
}

export function encodeCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id]), "utf8").toString("base64url");
}

export function encodePopularCursor(position: PopularPosition): string {
  return Buffer.from(JSON.stringify(["views", position.views, position.id]), "utf8").toString("base64url");
}

function cursorArray(cursor: string): unknown[] | undefined {
  if (!CURSOR_PATTERN.test(cursor)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    return Array.isArray(value) ? (value as unknown[]) : undefined;
  } catch {
    return undefined;
  }
}

const isCount = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
const isMediaId = (value: unknown): value is string => typeof value === "string" && MEDIA_ID.test(value);

/** The position a cursor stands for; undefined when it is not one this code made. */
export function decodeCursor(cursor: string): ListPosition | undefined {
  const value = cursorArray(cursor);
  if (!value || value.length !== 2) return undefined;
  const [createdAt, id] = value;
  return isCount(createdAt) && isMediaId(id) ? { createdAt, id } : undefined;
}

/** The popular feed's position a cursor stands for; undefined when it is not one of that feed's cursors. */
export function decodePopularCursor(cursor: string): PopularPosition | undefined {
  const value = cursorArray(cursor);
  if (!value || value.length !== 3 || value[0] !== "views") return undefined;
  const [, views, id] = value;
  return isCount(views) && isMediaId(id) ? { views, id } : undefined;
}

/**
 * Cuts a page from rows fetched with `limit + 1`: the extra row only says that there is
 * more, and the cursor points after the last row shown.
 */
export function pageOf<T extends { created_at: number; id: string }>(
  rows: readonly T[],
  limit: number,
): { rows: T[]; next: string | null } {
  const shown = rows.slice(0, limit);
  const last = shown[shown.length - 1];
  return { rows: shown, next: rows.length > limit && last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null };
}

/** pageOf for the popular feed: the cursor points after the last row shown, by (views, id). */
export function popularPageOf<T extends { views?: number | null; id: string }>(rows: readonly T[], limit: number): { rows: T[]; next: string | null } {
  const shown = rows.slice(0, limit);
  const last = shown[shown.length - 1];
  return { rows: shown, next: rows.length > limit && last ? encodePopularCursor({ views: Number(last.views ?? 0), id: last.id }) : null };
}

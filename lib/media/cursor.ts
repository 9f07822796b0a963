/**
 * Listing cursors. A page is cut by (created_at, id), newest first: the id breaks ties
 * between items created in the same millisecond, so the order is total and a cursor
 * points between two items exactly. Items inserted while someone pages are newer than
 * the first page and so never shift the pages that follow (nothing skipped or repeated).
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

export function encodeCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id]), "utf8").toString("base64url");
}

/** The position a cursor stands for; undefined when it is not one this code made. */
export function decodeCursor(cursor: string): ListPosition | undefined {
  if (!CURSOR_PATTERN.test(cursor)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [createdAt, id] = value as unknown[];
  if (typeof createdAt !== "number" || !Number.isSafeInteger(createdAt) || createdAt < 0) return undefined;
  if (typeof id !== "string" || !MEDIA_ID.test(id)) return undefined;
  return { createdAt, id };
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

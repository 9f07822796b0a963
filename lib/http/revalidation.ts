/**
 * Answers a browser may keep and revalidate: the media reads. Their bodies change only when the item or
 * the signing window does (signed URLs are stable within a window), so an ETag over the body lets a
 * reload be answered 304 without it. Every other API answer stays `no-store`.
 */
import { createHash } from "node:crypto";

export const REVALIDATED_ACTIONS: ReadonlySet<string> = new Set(["media.get", "media.list"]);

/** Kept by the browser only (answers depend on the session), and revalidated before every use. */
export const REVALIDATED_CACHE_CONTROL = "private, no-cache";
export const UNCACHED_CACHE_CONTROL = "no-store";

/** A weak ETag over the JSON text of the answer: the same body, the same tag, on every node. */
export function weakJsonEtag(body: unknown): string {
  return `W/"${createHash("sha256").update(JSON.stringify(body)).digest("base64url").slice(0, 27)}"`;
}

/**
 * Whether an If-None-Match header names this ETag (weak comparison, RFC 9110 §13.1.2), so the answer is
 * 304. Decided here rather than left to moleculer-web's `fresh`, which ignores If-None-Match whenever the
 * request says `Cache-Control: no-cache`, as fetch() adds to any request that carries a validator.
 */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, "");
  return header.split(",").some((tag) => tag.trim() === "*" || opaque(tag) === opaque(etag));
}

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

export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/** An answer's JSON bytes and a weak ETag over them: the same body, the same tag, on every node. */
export interface RenderedAnswer {
  readonly body: Buffer;
  readonly etag: string;
}

// Keyed by the answer object itself: a page served from the node's local cache layer is the same object on every
// request, so it is serialised and hashed once, not once per request.
const rendered = new WeakMap<object, RenderedAnswer>();

export function renderJsonAnswer(answer: object): RenderedAnswer {
  const known = rendered.get(answer);
  if (known !== undefined) return known;
  const body = Buffer.from(JSON.stringify(answer));
  const result = { body, etag: `W/"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` };
  rendered.set(answer, result);
  return result;
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

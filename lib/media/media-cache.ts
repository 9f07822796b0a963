/**
 * Cache keys of the media read actions and the entries a write makes stale. The key
 * layouts are chosen so that one pattern reaches exactly the entries a write affects:
 *
 *   media.get:<id>|<caller>                        every caller's view of one item
 *   media.list:mine|<owner>|<cursor>|<limit>       one owner's own listing
 *   media.list:public|<cursor>|<limit>             the public feed, one entry for every caller (shown as to anyone)
 *   media.list:public|sort=popular|<cursor>|<limit>   the popular feed, likewise ("=" is in no cursor)
 *
 * Ids are nanoids and ULIDs: no "." (which a memory-cacher "*" would not cross) and no
 * glob characters, so they can be put into patterns as they are.
 */

export const MEDIA_GET_CACHE_KEYS = ["id", "#user.id"] as const;
export const MEDIA_LIST_CACHE_KEYS = ["scope", "#user.id", "cursor", "limit"] as const;

export const DEFAULT_LIST_LIMIT = 24;

/**
 * The listing's cache key: scope "public" and the default limit when absent, the limit as a
 * number, so that `GET /media`, `limit=24` and `limit="24"` share one entry and the "public"
 * pattern reaches it. The public feed does not depend on who asks (the catalogue shows it as
 * to anyone), so its key leaves the caller out and all viewers share one entry. The params are validated (defaults filled in, query strings converted)
 * before the cache is asked (mixins/params-validation.middleware.ts); invalid ones never
 * reach it.
 */
export function listCacheKey(actionName: string, params: { scope?: unknown; sort?: unknown; cursor?: unknown; limit?: unknown }, userId: unknown): string {
  const limit = params.limit === undefined ? DEFAULT_LIST_LIMIT : Number(params.limit);
  const scope = String(params.scope ?? "public");
  // Newest first keeps the key it always had; another order is named in the key.
  const sort = params.sort === undefined || params.sort === "newest" ? "" : `sort=${String(params.sort)}|`;
  const page = `${sort}${String(params.cursor)}|${String(limit)}`;
  return scope === "public" ? `${actionName}:public|${page}` : `${actionName}:${scope}|${String(userId)}|${page}`;
}

/** The public feed's pages: the entries every caller shares, worth keeping in each node's memory for a moment too. */
export function isSharedPage(key: string): boolean {
  return key.startsWith("media.list:public|");
}

/** How long a node keeps a shared page in memory before it asks the shared cache again. */
export const SHARED_PAGE_LOCAL_TTL_MS = 1000;
export const SHARED_PAGE_LOCAL_ENTRIES = 256;

/** What a write did to one item, as far as cached reads are concerned. */
export interface MediaChange {
  readonly id: string;
  readonly ownerId: string;
  /** Whether the item was in the public feed before the write, and is after it. */
  readonly publicBefore: boolean;
  readonly publicAfter: boolean;
}

/**
 * Past this many items in one write (an account's media deleted together), all cached
 * media.get answers are cleaned with one pattern: a Redis pattern clean scans the whole
 * key space, so one broad scan is cheaper than a hundred narrow ones.
 */
export const MAX_ITEM_PATTERNS = 20;

export function stalePatterns(changes: readonly MediaChange[]): string[] {
  const patterns = new Set<string>();
  const everyItem = new Set(changes.map((change) => change.id)).size > MAX_ITEM_PATTERNS;
  if (everyItem) patterns.add("media.get:**");
  for (const change of changes) {
    if (!everyItem) patterns.add(`media.get:${change.id}|**`);
    patterns.add(`media.list:mine|${change.ownerId}|**`);
    if (change.publicBefore || change.publicAfter) patterns.add("media.list:public|**");
  }
  return [...patterns];
}

/**
 * How long a media answer may be cached. Answers carry signed URLs, which expire: an
 * entry must be dropped long before its URLs stop working, so it lives at most a quarter
 * of the URL lifetime (and never longer than a minute, nor than the general cache TTL).
 */
export function mediaReadTtlSeconds(cacheTtlSeconds: number, signedUrlTtlSeconds: number): number {
  return Math.max(1, Math.min(cacheTtlSeconds, 60, Math.floor(signedUrlTtlSeconds / 4)));
}

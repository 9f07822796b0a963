/**
 * Cache keys as the Moleculer cacher builds them for `keys: [...]`: the action name, a
 * colon, then the key values joined by "|". Knowing the shape lets a write clean exactly
 * the entries it made stale.
 */
export function cacheKeyPattern(action: string, ...leadingValues: readonly string[]): string {
  return leadingValues.length === 0 ? `${action}:**` : `${action}:${leadingValues.join("|")}*`;
}

/** Spreads expiry over ±fraction of the TTL so that entries written together do not all expire together. */
export function jitteredTtl(ttlSeconds: number, fraction = 0.1, random: () => number = Math.random): number {
  const spread = ttlSeconds * fraction;
  return Math.max(1, Math.round(ttlSeconds - spread + random() * 2 * spread));
}

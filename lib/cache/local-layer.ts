import { LruCache } from "./lru-cache";

/** The part of a Moleculer cacher that the layer wraps: keys without the cacher's own prefix. */
export interface LayeredCacher {
  get(key: string): Promise<unknown>;
  set(key: string, data: unknown, ttl?: number): Promise<unknown>;
  del(key: string | string[]): Promise<unknown>;
  clean(match?: string | string[]): Promise<unknown>;
}

export interface LocalLayerOptions {
  /** Which entries are kept locally as well: those every caller shares. */
  readonly holds: (key: string) => boolean;
  readonly ttlMs: number;
  readonly entries: number;
  /** Milliseconds since the epoch; replaceable in tests. */
  readonly now?: () => number;
}

interface LocalEntry {
  readonly value: unknown;
  readonly expiresAt: number;
}

/**
 * Puts a short-lived memory layer in front of the shared cache for the entries every caller shares (the public
 * feed's pages). A busy page is then fetched from Redis and parsed once per `ttlMs` on each node instead of on every
 * request, and the same object is handed out, so the gateway can reuse its rendered bytes.
 *
 * Any delete or clean empties the layer: a write cleans here at once, and on the other nodes when its clean
 * broadcast arrives; `ttlMs` bounds how stale a page may stay when a broadcast is missed. Callers must not
 * mutate what they get.
 */
export function addLocalLayer(cacher: LayeredCacher, options: LocalLayerOptions): void {
  const now = options.now ?? Date.now;
  const local = new LruCache<LocalEntry>(options.entries);
  // A fill that started before a clean must not put back what the clean removed.
  let generation = 0;
  const shared = { get: cacher.get.bind(cacher), set: cacher.set.bind(cacher), del: cacher.del.bind(cacher), clean: cacher.clean.bind(cacher) };

  cacher.get = async (key) => {
    if (!options.holds(key)) return shared.get(key);
    const entry = local.get(key);
    if (entry !== undefined && entry.expiresAt > now()) return entry.value;
    const started = generation;
    const value = await shared.get(key);
    if (value !== null && value !== undefined && started === generation) local.set(key, { value, expiresAt: now() + options.ttlMs });
    return value;
  };
  cacher.set = async (key, data, ttl) => {
    const started = generation;
    const result = await shared.set(key, data, ttl);
    if (options.holds(key) && started === generation) local.set(key, { value: data, expiresAt: now() + options.ttlMs });
    return result;
  };
  // Emptied before and after: a fill that read the shared cache while it was being cleaned is dropped too.
  const emptied = async <T>(remove: () => Promise<T>): Promise<T> => {
    generation++;
    local.clear();
    try {
      return await remove();
    } finally {
      generation++;
      local.clear();
    }
  };
  cacher.del = (key) => emptied(() => shared.del(key));
  cacher.clean = (match) => emptied(() => shared.clean(match));
}

import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import { CACHE_CLEAN_EVENT } from "../lib/service-contracts";

/**
 * Cleans cache entries made stale by a write: here at once (so the writer's next read is
 * fresh, and a shared Redis cache is clean for everyone), then on every other node by a
 * broadcast event, for nodes that keep their own memory cache.
 *
 * A reader that misses the cache right after the write may refill it from a replica that
 * has not applied the write yet; `againAfterMs` (the longest lag a replica may have and
 * stay in rotation) cleans once more after that window, so such a stale entry lives no
 * longer than the lag, not the TTL.
 */
export async function invalidateCache(
  broker: ServiceBroker,
  patterns: readonly string[],
  options: { againAfterMs?: number } = {},
): Promise<void> {
  const clean = async () => {
    if (broker.cacher) {
      for (const pattern of patterns) await broker.cacher.clean(pattern);
    }
    await broker.broadcast(CACHE_CLEAN_EVENT, { patterns });
  };
  await clean();
  if (options.againAfterMs) {
    const timers = pendingCleans.get(broker) ?? new Set<NodeJS.Timeout>();
    pendingCleans.set(broker, timers);
    const timer = setTimeout(() => {
      timers.delete(timer);
      clean().catch((error: Error) => broker.logger.warn(`second cache clean failed: ${error.message}`));
    }, options.againAfterMs);
    timer.unref();
    timers.add(timer);
  }
}

/** Second cleans not yet run, per broker, so that a stopping node does not clean a cache it has disconnected from. */
const pendingCleans = new WeakMap<ServiceBroker, Set<NodeJS.Timeout>>();

export const cacheInvalidationMixin: Partial<ServiceSchema> = {
  stopped() {
    for (const timer of pendingCleans.get(this.broker) ?? []) clearTimeout(timer);
    pendingCleans.delete(this.broker);
  },

  events: {
    [CACHE_CLEAN_EVENT]: {
      params: { patterns: { type: "array", items: "string" } },
      async handler(ctx: Context<{ patterns: string[] }>) {
        if (ctx.nodeID === this.broker.nodeID || !this.broker.cacher) return;
        for (const pattern of ctx.params.patterns) await this.broker.cacher.clean(pattern);
      },
    },
  },
};

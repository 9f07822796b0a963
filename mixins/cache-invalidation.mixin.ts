import type { Context, ServiceBroker, ServiceSchema } from "moleculer";

export const CACHE_CLEAN_EVENT = "cache.clean";

/**
 * Cleans cache entries made stale by a write: here at once (so the writer's next read is
 * fresh, and a shared Redis cache is clean for everyone), then on every other node by a
 * broadcast event, for nodes that keep their own memory cache.
 */
export async function invalidateCache(broker: ServiceBroker, patterns: readonly string[]): Promise<void> {
  if (broker.cacher) {
    for (const pattern of patterns) await broker.cacher.clean(pattern);
  }
  await broker.broadcast(CACHE_CLEAN_EVENT, { patterns });
}

export const cacheInvalidationMixin: Partial<ServiceSchema> = {
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

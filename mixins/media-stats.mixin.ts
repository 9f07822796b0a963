import type { Context, Service, ServiceSchema } from "moleculer";
import { MEDIA_GET_CACHE_KEYS } from "../lib/media/media-cache";
import type { Runtime } from "../lib/runtime";
import type { MediaStatsRepository } from "../lib/stats/media-stats-repository";
import { viewStoreOf } from "../lib/stats/view-stores";
import { ulidParam } from "../lib/service-contracts";

const time = { type: "number", integer: true, min: 0, convert: true };

/**
 * The media service's part in the statistics: moves counted views into the media database every
 * few seconds (and once more when the node stops), and answers the media side of snapshots.
 */
export function mediaStatsMixin(runtime: Runtime, repository: () => MediaStatsRepository): Partial<ServiceSchema> {
  const store = viewStoreOf(runtime);
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();

  async function flushOnce(service: Service): Promise<void> {
    await store.flush(async (batch) => {
      const { items } = await repository().applyViews(batch, Date.now());
      // Owners see their counts: their cached answers for these items go (one exact key each, no scan).
      const cacher = service.broker.cacher;
      if (cacher && items.length > 0) {
        const keys = items.map((item) => cacher.getCacheKey("media.get", { id: item.id }, { user: { id: item.ownerId } }, [...MEDIA_GET_CACHE_KEYS]));
        await cacher.del(keys);
      }
    });
  }

  function flush(service: Service): Promise<void> {
    // One flush at a time on this node; a failed one leaves its views for the next.
    flushing = flushing.then(() => flushOnce(service)).catch((error: Error) => service.logger.warn(`view counts not flushed yet: ${error.message}`));
    return flushing;
  }

  return {
    started(this: Service) {
      timer = setInterval(() => void flush(this), runtime.settings.stats.viewFlushSeconds * 1000);
      timer.unref();
    },

    async stopped(this: Service) {
      clearInterval(timer);
      await flush(this);
    },

    actions: {
      /** Counted views into the database now (tests, operators); otherwise every STATS_VIEW_FLUSH_SECONDS. */
      flushViews: {
        visibility: "public",
        params: { $$strict: true },
        async handler(this: Service) {
          await flush(this);
          return { flushed: true };
        },
      },

      /** The media side of one snapshot period [from, to). */
      statsWindow: {
        visibility: "public",
        params: { $$strict: true, from: time, to: time },
        handler(ctx: Context<{ from: number; to: number }>) {
          return repository().window(ctx.params.from, ctx.params.to);
        },
      },

      /** One owner's uploads per day and the views of their items ("My stats"). */
      ownerStats: {
        visibility: "public",
        params: { $$strict: true, ownerId: ulidParam("user"), days: { type: "number", integer: true, min: 1, max: 366, default: 30 } },
        handler(ctx: Context<{ ownerId: string; days: number }>) {
          return repository().ownerStats(ctx.params.ownerId, Date.now(), ctx.params.days);
        },
      },
    },
  };
}

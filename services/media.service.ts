import { backOff } from "exponential-backoff";
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Actor } from "../lib/auth/policy";
import type { Database } from "../lib/db/database";
import type { MediaDatabase } from "../lib/db/schemas/media";
import { MediaCatalogue } from "../lib/media/catalogue";
import type { CatalogueHooks, ListScope, ListSort, NewMedia } from "../lib/media/catalogue";
import { CURSOR_PATTERN } from "../lib/media/cursor";
import { Delivery } from "../lib/media/delivery";
import {
  DEFAULT_LIST_LIMIT,
  MEDIA_GET_CACHE_KEYS,
  MEDIA_LIST_CACHE_KEYS,
  listCacheKey,
  mediaReadTtlSeconds,
  stalePatterns,
} from "../lib/media/media-cache";
import { MediaRepository } from "../lib/media/media-repository";
import { MediaStatsRepository } from "../lib/stats/media-stats-repository";
import { ProcessingRepository } from "../lib/media/processing-repository";
import type { Finish } from "../lib/media/processing-repository";
import { JobPublisher } from "../lib/jobs/job-channel";
import { CHANNEL_ADAPTER_CONNECTED_EVENT, MEDIA_JOBS_CHANNEL, PROGRESS_EVENT, USER_DELETED_EVENT } from "../lib/service-contracts";
import type { ProgressUpdate, UserDeleted } from "../lib/service-contracts";
import { TombstoneSweeper, tombstoneSweepTask } from "../lib/media/tombstone-sweep";
import type { PeriodicTask } from "../lib/scheduling/periodic-task";
import { FAILURE_REASONS } from "../lib/jobs/job-state";
import type { FailureReason } from "../lib/jobs/job-state";
import type { StoredVariant } from "../lib/jobs/processor";
import type { MediaRow } from "../lib/media/media-view";
import type { MediaEdit } from "../lib/media/media-repository";
import type { Runtime } from "../lib/runtime";
import { NotFoundError, ValidationError } from "../lib/errors";
import { authorize } from "../lib/auth/policy";
import type { ShoalMeta } from "../moleculer.config";
import { cacheInvalidationMixin, invalidateCache } from "../mixins/cache-invalidation.mixin";
import { databaseMixin } from "../mixins/database.mixin";
import { mediaStatsMixin } from "../mixins/media-stats.mixin";
import { claimToken, description, finishParams, mediaId, newMediaParams, storedVariantsParams, title, visibility } from "./media.params";

type MediaContext<P = Record<string, never>> = Context<P, ShoalMeta>;

function actorOf(ctx: MediaContext<unknown>): Actor {
  const user = ctx.meta.user;
  return user ? { id: user.id, role: user.role } : undefined;
}

/** Owner of the media database: the catalogue of uploads, their variants and processing state. */
export function mediaService(runtime: Runtime): ServiceSchema {
  let catalogue: MediaCatalogue;
  let processing: ProcessingRepository;
  let stats: MediaStatsRepository;
  let jobs: JobPublisher;
  let tombstones: TombstoneSweeper;
  let tombstoneSweep: PeriodicTask<number> | undefined;
  const { settings } = runtime;
  const replicaLagWindowMs = settings.replication.maxLagSeconds * 1000;
  const readTtl = mediaReadTtlSeconds(settings.cache.ttlSeconds, settings.delivery.signedUrlTtlSeconds);

  /** The catalogue's links to the rest of the system, bound to the caller's context (meta, tracing, read-your-writes). */
  function hooksFor(ctx: MediaContext<unknown>): CatalogueHooks {
    return {
      // One call for a page's owners, each cached there; an account that is gone (its media are about to go too) shows no username.
      async usernames(ids) {
        if (ids.length === 0) return new Map();
        const answer = await ctx.call<{ users: { id: string; username: string }[] }, { ids: readonly string[] }>("users.getMany", { ids });
        return new Map(answer.users.map((user) => [user.id, user.username]));
      },
      async releaseQuota(ownerId, bytes) {
        await ctx.call("users.releaseQuota", { userId: ownerId, bytes });
      },
      async changed(changes) {
        if (changes.length > 0) await invalidateCache(ctx.broker, stalePatterns(changes), { againAfterMs: replicaLagWindowMs });
      },
    };
  }

  /** Cleans the cached reads of an item whose processing state changed. */
  async function changedRow(ctx: MediaContext<unknown>, row: MediaRow): Promise<void> {
    const isPublic = row.visibility === "public";
    await hooksFor(ctx).changed([{ id: row.id, ownerId: row.owner_id, publicBefore: isPublic, publicAfter: isPublic }]);
  }

  return {
    name: "media",
    mixins: [
      // First: a service's mixins stop in the order given, so its final flush of view counts runs before the database closes.
      mediaStatsMixin(runtime, () => stats),
      databaseMixin<MediaDatabase>(runtime, "media", (db: Database<MediaDatabase>) => {
        const repository = new MediaRepository(db);
        catalogue = new MediaCatalogue({
          repository,
          storage: runtime.storage,
          delivery: new Delivery(runtime.storage, settings.delivery),
        });
        processing = new ProcessingRepository(db);
        stats = new MediaStatsRepository(db);
        tombstones = new TombstoneSweeper({ repository, retentionDays: settings.mediaTombstoneRetentionDays });
      }),
      cacheInvalidationMixin,
    ],

    created(this: Service) {
      const broker = this.broker;
      jobs = new JobPublisher({
        // Put on the broker by the channels middleware (its `adapterPropertyName`).
        adapter: () => broker.channelAdapter,
        send: (payload) => broker.sendToChannel(MEDIA_JOBS_CHANNEL, payload),
        log: (level, message) => this.logger[level](message),
      });
    },

    /** Runs after the database mixin has migrated: sweeps once now, then every interval. */
    started(this: Service) {
      tombstoneSweep = runtime.periodicTasks.schedule(tombstoneSweepTask(tombstones, settings.mediaTombstoneRetentionDays, this.logger));
    },

    async stopped() {
      await runtime.periodicTasks.unschedule(tombstoneSweep);
    },

    actions: {
      /** One item; someone else's private item answers 404. */
      get: {
        cache: { keys: [...MEDIA_GET_CACHE_KEYS], ttl: readTtl, lock: { enabled: true } },
        params: { $$strict: true, id: mediaId },
        async handler(ctx: MediaContext<{ id: string }>) {
          return { media: await catalogue.get(actorOf(ctx), ctx.params.id, hooksFor(ctx)) };
        },
      },

      /** The caller's own items (scope=mine, signed in) or the public feed, newest first (or, public feed only, sort=popular: most viewed first), by cursor. */
      list: {
        cache: {
          keys: [...MEDIA_LIST_CACHE_KEYS],
          keygen: (actionName: string, params: Record<string, unknown>, meta: unknown) =>
            listCacheKey(actionName, params, (meta as ShoalMeta | undefined)?.user?.id),
          ttl: readTtl,
          lock: { enabled: true },
        },
        params: {
          $$strict: true,
          scope: { type: "enum", values: ["mine", "public"], default: "public" },
          sort: { type: "enum", values: ["newest", "popular"], default: "newest" },
          cursor: { type: "string", pattern: CURSOR_PATTERN, optional: true, messages: { stringPattern: "is not a cursor from this list" } },
          limit: { type: "number", integer: true, min: 1, max: 100, convert: true, default: DEFAULT_LIST_LIMIT },
        },
        async handler(ctx: MediaContext<{ scope: ListScope; sort: ListSort; cursor?: string; limit: number }>) {
          return catalogue.list(actorOf(ctx), ctx.params, hooksFor(ctx));
        },
      },

      /** Title, description, visibility (owner or admin); null clears a title or description. */
      update: {
        params: {
          $$strict: true,
          id: mediaId,
          title: { ...title, optional: true, nullable: true },
          description: { ...description, optional: true, nullable: true },
          visibility: { ...visibility, optional: true },
        },
        async handler(ctx: MediaContext<MediaEdit & { id: string }>) {
          const { id, ...edit } = ctx.params;
          return { media: await catalogue.update(actorOf(ctx), id, edit, hooksFor(ctx)) };
        },
      },

      /** Objects, rows and quota; 204, also when the caller's item is already gone. */
      delete: {
        params: { $$strict: true, id: mediaId },
        async handler(ctx: MediaContext<{ id: string }>) {
          await catalogue.delete(actorOf(ctx), ctx.params.id, hooksFor(ctx));
          ctx.meta.$statusCode = 204;
          return null;
        },
      },

      /**
       * For the upload pipeline (not routed): records a stored original. The owner's same
       * bytes again → { media: the existing item, duplicate: true } and nothing inserted
       * (the caller deletes its object and releases its quota).
       */
      create: {
        visibility: "public",
        params: newMediaParams,
        async handler(this: Service, ctx: MediaContext<NewMedia>) {
          const hooks = hooksFor(ctx);
          const outcome = await catalogue.create(ctx.params, hooks);
          if (!outcome.duplicate) {
            // Also when a retried create finds its item already there: the first emit may never have happened,
            // and processing is idempotent, so a second nudge costs nothing.
            const job = { id: outcome.row.id, ownerId: outcome.row.owner_id, kind: outcome.row.kind };
            await ctx.broker.emit<ProgressUpdate>(PROGRESS_EVENT, { mediaId: job.id, ownerId: job.ownerId, stage: "queued", percent: 0 });
            // The durable nudge for the workers. Should it be lost (publish failed, node died), the
            // reconciler finds the row still `uploaded` past its deadline and publishes it again.
            await jobs.publish(job).catch((error: Error) => {
              this.logger.warn(`could not publish the processing job of ${job.id} (the reconciler will): ${error.message}`);
            });
          }
          // The pipeline answers the uploader, who is the owner: show the item as its owner sees it.
          const owner: Actor = { id: ctx.params.ownerId, role: "user" };
          return { media: await catalogue.view(outcome.row, owner, hooks), duplicate: outcome.duplicate };
        },
      },

      // The processing state machine, for the workers (not routed). Rules: lib/jobs/job-state.ts.

      /**
       * Takes an item for processing (or says why not): { decision, job } or null when the item is gone. `token` names the
       * claim: asked again with the same token (its first answer was lost), it answers `start` again for the item held.
       */
      claimProcessing: {
        visibility: "public",
        params: { $$strict: true, id: mediaId, force: { type: "boolean", optional: true }, token: claimToken },
        async handler(ctx: MediaContext<{ id: string; force?: boolean; token?: string }>) {
          const outcome = await processing.claim(ctx.params.id, Date.now(), {
            maxAttempts: settings.jobs.maxAttempts,
            staleAfterMs: settings.jobs.deadlineSeconds * 1000,
            force: ctx.params.force,
            token: ctx.params.token,
          });
          if (!outcome) return null;
          if (outcome.decision.action === "start") await changedRow(ctx, outcome.row);
          const { row } = outcome;
          return { decision: outcome.decision, row: { ownerId: row.owner_id, kind: row.kind, mime: row.mime, originalKey: row.original_key } };
        },
      },

      completeProcessing: {
        visibility: "public",
        params: finishParams,
        async handler(ctx: MediaContext<Finish & { id: string }>) {
          const { id, ...finish } = ctx.params;
          const row = await processing.complete(id, finish, Date.now());
          if (row) await changedRow(ctx, row);
          return { done: row !== undefined };
        },
      },

      failProcessing: {
        visibility: "public",
        params: { $$strict: true, id: mediaId, reason: { type: "enum", values: [...FAILURE_REASONS] } },
        async handler(ctx: MediaContext<{ id: string; reason: FailureReason }>) {
          const row = await processing.fail(ctx.params.id, ctx.params.reason, Date.now());
          if (row) await changedRow(ctx, row);
          return { done: row !== undefined };
        },
      },

      /**
       * A stopping worker gives back a job it claimed: queued again, the attempt not counted. With `token`, only while the
       * item is held under that claim (a worker giving up on a claim whose answer never came leaves others' claims alone).
       */
      handBackProcessing: {
        visibility: "public",
        params: { $$strict: true, id: mediaId, token: claimToken },
        async handler(ctx: MediaContext<{ id: string; token?: string }>) {
          const row = await processing.handBack(ctx.params.id, Date.now(), ctx.params.token);
          if (row) await changedRow(ctx, row);
          return { done: row !== undefined };
        },
      },

      /** A failed attempt that will be retried: back to `uploaded`. */
      releaseProcessing: {
        visibility: "public",
        params: { $$strict: true, id: mediaId },
        async handler(ctx: MediaContext<{ id: string }>) {
          const row = await processing.release(ctx.params.id, Date.now());
          if (row) await changedRow(ctx, row);
          return { done: row !== undefined };
        },
      },

      /** Progress of a running job (already throttled by the worker), or only a sign of life without stage. */
      reportProgress: {
        visibility: "public",
        params: {
          $$strict: true,
          id: mediaId,
          stage: { type: "string", max: 16, optional: true },
          percent: { type: "number", min: 0, max: 100, optional: true },
        },
        async handler(ctx: MediaContext<{ id: string; stage?: string; percent?: number }>) {
          const { id, stage, percent } = ctx.params;
          const updated = await processing.progress(id, stage, percent, Date.now());
          // Only the item's own cached reads: GET /api/media/:id shows the progress.
          if (updated && stage !== undefined) await invalidateCache(ctx.broker, [`media.get:${id}|**`]);
          return { updated };
        },
      },

      /** Records stored variants, all in one write; a name recorded before is replaced. */
      saveVariants: {
        visibility: "public",
        params: storedVariantsParams,
        async handler(this: Service, ctx: MediaContext<{ id: string; variants: StoredVariant[] }>) {
          const { id, variants } = ctx.params;
          if (new Set(variants.map((variant) => variant.name)).size !== variants.length) {
            throw new ValidationError("Each variant name may appear once.", { variants: "names repeat" });
          }
          const replaced = await processing.saveVariants(id, variants, Date.now());
          // A reprocessed (or redelivered) job stores its variants under new keys: the objects they replace go.
          // Should a delete fail, that object is left until the item is deleted (its whole prefix goes then).
          await Promise.all(
            replaced.map((key) =>
              runtime.storage.delete(key).catch((error: Error) => this.logger.warn(`could not delete replaced variant ${key}: ${error.message}`)),
            ),
          );
          return { saved: variants.length };
        },
      },

      /** For the reconciler: rows in `uploaded`/`processing` untouched since `before`. */
      stuck: {
        visibility: "public",
        params: { $$strict: true, before: { type: "number", integer: true }, limit: { type: "number", integer: true, min: 1, max: 1000 } },
        async handler(ctx: MediaContext<{ before: number; limit: number }>) {
          return { items: await processing.stuck(ctx.params.before, ctx.params.limit) };
        },
      },

      /** For the reconciler: the rows it just re-enqueued count as nudged now. */
      /** Admins (and operators through the REPL): process an item again; asking twice does no harm. */
      reprocess: {
        params: { $$strict: true, id: mediaId },
        async handler(ctx: MediaContext<{ id: string }>) {
          const actor = actorOf(ctx);
          const current = await catalogue.get(actor, ctx.params.id, hooksFor(ctx));
          authorize(actor, "reprocess", { kind: "media", ownerId: current.owner.id, visibility: current.visibility }, "media");
          const job = await processing.resetForReprocessing(ctx.params.id, Date.now());
          if (!job) throw new NotFoundError("media");
          const isPublic = current.visibility === "public";
          await hooksFor(ctx).changed([{ id: job.id, ownerId: job.ownerId, publicBefore: isPublic, publicAfter: isPublic }]);
          await ctx.broker.emit(PROGRESS_EVENT, { mediaId: job.id, ownerId: job.ownerId, stage: "queued", percent: 0 });
          await jobs.publish(job);
          ctx.meta.$statusCode = 202;
          return { media: await catalogue.get(actor, ctx.params.id, hooksFor(ctx)) };
        },
      },

      touchQueued: {
        visibility: "public",
        params: { $$strict: true, ids: { type: "array", items: mediaId, max: 1000 } },
        async handler(ctx: MediaContext<{ ids: string[] }>) {
          const now = Date.now();
          await processing.touchQueued(ctx.params.ids, now, now - settings.jobs.deadlineSeconds * 1000);
          return { touched: ctx.params.ids.length };
        },
      },
    },

    events: {
      /** In cluster mode, the job streams exist before the first upload even if no worker ever subscribed. */
      [CHANNEL_ADAPTER_CONNECTED_EVENT]() {
        return jobs.prepare();
      },

      /** An account is gone: so are its media (objects and rows; the quota went with the account). */
      [USER_DELETED_EVENT]: {
        params: { userId: { type: "string" }, deletedAt: { type: "string", optional: true } },
        async handler(this: Service, ctx: MediaContext<UserDeleted>) {
          const { userId: deleted } = ctx.params;
          // Events are not redelivered: ride out a short outage (database, storage) here rather than leave orphans.
          const removed = await backOff(() => catalogue.deleteAllOf(deleted, hooksFor(ctx)), {
            numOfAttempts: 6,
            startingDelay: 500,
            timeMultiple: 2,
            jitter: "full",
            retry: (error: Error, attempt: number) => {
              this.logger.warn(`deleting the media of deleted user ${deleted} failed (attempt ${attempt}), retrying: ${error.message}`);
              return true;
            },
          }).catch((error: Error) => {
            this.logger.error(`could not delete the media of deleted user ${deleted}: ${error.message}`);
            throw error;
          });
          if (removed > 0) this.logger.info(`deleted ${removed} media item(s) of deleted user ${deleted}`);
        },
      },
    },
  };
}

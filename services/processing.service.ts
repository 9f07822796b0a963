import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { Context, Service, ServiceSchema } from "moleculer";
import { runJob } from "../lib/jobs/job-runner";
import type { ClaimedRow, JobPorts, OwnedItem } from "../lib/jobs/job-runner";
import type { ShoalMeta } from "../moleculer.config";
import { heartbeatIntervalMs } from "../lib/jobs/job-state";
import type { ClaimDecision } from "../lib/jobs/job-state";
import type { JobMessage, ProcessorRegistry, StoredVariant } from "../lib/jobs/processor";
import { addsToRow, ProgressThrottle } from "../lib/jobs/progress-throttle";
import { OnceLog, planReconcile } from "../lib/jobs/reconcile";
import type { StuckCandidate } from "../lib/jobs/reconcile";
import type { Runtime } from "../lib/runtime";
import type { PeriodicTask } from "../lib/scheduling/periodic-task";
import { variantKey } from "../lib/storage/object-keys";
import { describeStorageFailure } from "../lib/storage/s3-unreachable";
import { jobChannelNatsOptions } from "../lib/jobs/job-channel";
import { MEDIA_DEAD_LETTER_CHANNEL, MEDIA_JOBS_CHANNEL, PROGRESS_EVENT } from "../lib/service-contracts";
import type { ProgressUpdate } from "../lib/service-contracts";
import pLimit from "p-limit";
import { SlotQueue } from "../lib/jobs/slot-queue";
import type { SlotTicket } from "../lib/jobs/slot-queue";

/** At most this often per item (4 per second), plus every change of stage. */
const PROGRESS_INTERVAL_MS = 250;
const RECONCILE_BATCH = 500;
/**
 * A job message handed back by a busy node is offered to the group again after a quarter of the
 * time a job recently held one of this node's slots, within these bounds: a slot that frees finds a message soon after, and long
 * jobs do not make messages circle more often than they need to.
 */
const BUSY_REDELIVERY_MIN_MS = 50;
const BUSY_REDELIVERY_MAX_MS = 1000;
/** While a node holds a JetStream message, it tells JetStream so this often (its ack wait is 30 s). */
const HOLD_KEEPALIVE_MS = 10_000;
/** A message reaching a stopping worker goes back to the group after this long (to another member, most likely). */
const HAND_BACK_REDELIVERY_MS = 250;

/** The JetStream message behind a job (NATS adapter); the in-process adapter of embedded mode passes none. */
interface JetStreamDelivery {
  nak(delayMs?: number): void;
  working(): void;
}

function jetStreamDelivery(raw: unknown): JetStreamDelivery | undefined {
  const candidate = raw as Partial<JetStreamDelivery> | null | undefined;
  return typeof candidate?.nak === "function" && typeof candidate.working === "function" ? (candidate as JetStreamDelivery) : undefined;
}

/**
 * The processing worker: takes job messages, runs the processor of the item's kind, records
 * the outcome through the media service (which owns the state machine), and reconciles items
 * whose message was lost. Which processors run here is decided by node.ts.
 */
export function processingService(runtime: Runtime, processors: ProcessorRegistry): ServiceSchema {
  const { settings } = runtime;
  const jobs = settings.jobs;
  const kinds = new Set(Object.keys(processors));
  const throttle = new ProgressThrottle(PROGRESS_INTERVAL_MS);
  const onceLog = new OnceLog();
  const stopping = new AbortController();
  let reconciler: PeriodicTask<number> | undefined;

  function portsFor(service: Service): JobPorts {
    const broker = service.broker;
    const call = <T>(action: string, params: object) => broker.call<T, object>(action, params);
    // Recorded as the owner's writes, so that the owner's next reads (the api node's `media:ready` included) see them.
    const callFor = (item: OwnedItem, action: string, params: object) =>
      broker.call<unknown, object>(action, { id: item.mediaId, ...params }, { meta: { consistencyKey: item.ownerId } satisfies ShoalMeta });
    return {
      async claim(mediaId, token) {
        const answer = await call<{ decision: ClaimDecision; row: ClaimedRow } | null>("media.claimProcessing", { id: mediaId, token });
        return answer ?? undefined;
      },
      async complete(item, result) {
        await callFor(item, "media.completeProcessing", result);
      },
      async fail(item, reason, detail) {
        service.logger.info(`media ${item.mediaId} failed: ${reason} (${detail})`);
        await callFor(item, "media.failProcessing", { reason });
      },
      async release(mediaId) {
        await call("media.releaseProcessing", { id: mediaId });
      },
      async handBack(mediaId, token) {
        await call("media.handBackProcessing", { id: mediaId, token });
      },
      async republish(message) {
        await broker.sendToChannel(MEDIA_JOBS_CHANNEL, message);
      },
      async deadLetter(message, reason, detail) {
        await broker
          .sendToChannel(MEDIA_DEAD_LETTER_CHANNEL, { ...message, reason, detail, at: new Date().toISOString() })
          .catch((error: Error) => service.logger.error(`could not dead-letter ${message.id}: ${error.message}`));
      },
      async heartbeat(mediaId) {
        await call("media.reportProgress", { id: mediaId });
      },
      progress(mediaId, ownerId, stage, percent) {
        if (!throttle.admit({ mediaId, stage, percent })) return;
        const rounded = Math.round(Math.max(0, Math.min(100, percent)));
        // Pushed to the gateways (balanced: one api node relays it, through the socket.io Redis adapter in cluster).
        void broker.emit<ProgressUpdate>(PROGRESS_EVENT, { mediaId, ownerId, stage, percent: rounded });
        if (addsToRow(stage, rounded)) {
          call("media.reportProgress", { id: mediaId, stage, percent: rounded }).catch(() => undefined);
        }
        if (stage === "ready" || stage === "failed") throttle.forget(mediaId);
      },
      async openContext(job, report) {
        const workDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-job-"));
        let original: Promise<string> | undefined;
        return {
          context: {
            workDir,
            signal: stopping.signal,
            reportProgress: report,
            downloadOriginal() {
              original ??= (async () => {
                const target = path.join(workDir, "original");
                const stored = await runtime.storage.get(job.originalKey);
                await pipeline(stored.body, fs.createWriteStream(target, { flags: "wx" }));
                return target;
              })();
              return original;
            },
            async saveVariants(variants) {
              report("storing", 0);
              const keys = variants.map((variant) => variantKey(job.mediaId, variant.name, variant.extension));
              // Objects stored for a set that is not recorded would be left behind by the retry, which stores a new set.
              const removeStored = (error: unknown) =>
                Promise.all(keys.map((key) => runtime.storage.delete(key).catch(() => undefined))).then(() => {
                  throw error;
                });
              const stored = await Promise.all(
                variants.map(async (variant, index): Promise<StoredVariant> => {
                  const key = keys[index] as string;
                  const info = await runtime.storage.put(key, fs.createReadStream(variant.path), variant.mime);
                  return {
                    name: variant.name,
                    objectKey: key,
                    mime: variant.mime,
                    width: variant.width ?? null,
                    height: variant.height ?? null,
                    durationSeconds: variant.durationSeconds ?? null,
                    bytes: info.bytes,
                  };
                }),
              ).catch(removeStored);
              await call("media.saveVariants", { id: job.mediaId, variants: stored }).catch(removeStored);
            },
          },
          cleanup: () => fs.promises.rm(workDir, { recursive: true, force: true }),
        };
      },
      sleep: (ms) =>
        new Promise((resolve) => {
          const wait = setTimeout(resolve, ms);
          stopping.signal.addEventListener("abort", () => {
            clearTimeout(wait);
            resolve();
          });
        }),
      log: (level, message) => service.logger[level](message),
      knownOutage() {
        const outage = runtime.storage.outage;
        return outage?.known ? `file storage: ${describeStorageFailure(outage.reason)}` : undefined;
      },
    };
  }

  /**
   * One round (under the reconciler's lease): re-enqueue what is stuck past the deadline. Returns how many were
   * re-enqueued. `soleWorkerStarting`: embedded mode at start, when nothing waits for anyone else and an item
   * left `processing` was left so by this node's previous process, which died.
   */
  async function reconcile(service: Service, soleWorkerStarting: boolean): Promise<number> {
    const now = Date.now();
    const deadlineMs = soleWorkerStarting ? 0 : jobs.deadlineSeconds * 1000;
    const { items } = await service.broker.call<{ items: StuckCandidate[] }, object>("media.stuck", { before: now - deadlineMs, limit: RECONCILE_BATCH });
    const plan = planReconcile(items, now, { deadlineMs, kinds, runningAreOrphans: soleWorkerStarting });
    for (const [kind, count] of plan.waiting) {
      if (onceLog.first(kind)) service.logger.info(`${count}+ ${kind} item(s) wait in 'uploaded': no processor for ${kind} on this node`);
    }
    if (plan.requeue.length === 0) return 0;
    for (const row of plan.orphaned) await service.broker.call("media.releaseProcessing", { id: row.id });
    if (plan.orphaned.length > 0) service.logger.warn(`took over ${plan.orphaned.length} item(s) left 'processing' when this node last stopped without handing them back`);
    await service.broker.call("media.touchQueued", { ids: plan.requeue.map((row) => row.id) });
    for (const row of plan.requeue) {
      await service.broker.sendToChannel(MEDIA_JOBS_CHANNEL, { id: row.id, ownerId: row.ownerId, kind: row.kind });
    }
    service.logger.info(`reconciler re-enqueued ${plan.requeue.length} stuck item(s)`);
    return plan.requeue.length;
  }

  /** Processing slots: WORKER_CONCURRENCY processors at once, in the order the jobs arrived. */
  const slots = new SlotQueue(jobs.concurrency);
  /**
   * Jobs this node holds at most: one processing per slot and one waiting per slot, whose original is
   * fetched meanwhile. JetStream pushes a queue group's messages to its members at random, up to
   * JOB_MAX_IN_FLIGHT across the group, whatever each member can run: without a bound, one worker
   * queued half the backlog while another was idle, and a message waiting here past JetStream's ack
   * wait was delivered again. The waiting one keeps a slot busy the moment it frees, without waiting
   * for a redelivery or a download.
   */
  const holdLimit = jobs.concurrency * 2;
  const onThisNode = pLimit(holdLimit);

  return {
    name: "processing",
    dependencies: ["media"],
    channels: {
      [MEDIA_JOBS_CHANNEL]: {
        // One consumer group per kind of worker (images, transcoder, or all), so that each kind of
        // worker sees every job: a job for a kind this node does not process is skipped here only.
        group: `processing-${Object.keys(processors).sort().join("-") || "none"}`,
        // Group-wide in JetStream; each node runs at most WORKER_CONCURRENCY of them at once (below).
        maxInFlight: jobs.maxInFlight,
        // JetStream only: a handler that keeps throwing (the database down) is dead-lettered after this many
        // deliveries. Hand-backs by busy nodes count too, so a message that circled long may be dead-lettered
        // at its first throw; its row is still `uploaded`, and the reconciler enqueues it again.
        maxRetries: jobs.maxAttempts * 2,
        deadLettering: { enabled: settings.transporter.kind === "nats", queueName: MEDIA_DEAD_LETTER_CHANNEL },
        // JetStream only: the stream config the media service also makes the streams with (it publishes before
        // any worker may have subscribed), and a new durable consumer starting at the first message, not at
        // the next one (lib/jobs/job-channel.ts).
        nats: jobChannelNatsOptions(),
        async handler(this: Service, message: JobMessage, raw?: unknown) {
          const run = (slot?: SlotTicket) =>
            runJob(message, processors, portsFor(this), {
              maxAttempts: jobs.maxAttempts,
              baseDelayMs: jobs.retryBaseDelayMs,
              maxDelayMs: jobs.retryMaxDelayMs,
              heartbeatMs: heartbeatIntervalMs(jobs.deadlineSeconds),
              slot,
              stopping: stopping.signal,
            });
          if (!kinds.has(message.kind)) {
            // Nothing to run here: answer at once instead of waiting for a slot behind running jobs.
            await run();
            if (onceLog.first(message.kind)) this.logger.info(`no processor for ${message.kind} on this node: ${message.id} stays 'uploaded'`);
            return;
          }
          const delivery = jetStreamDelivery(raw);
          if (stopping.signal.aborted) {
            // Stopping: take nothing new. JetStream offers it to the group again; embedded, the next start's reconciler takes it.
            delivery?.nak(HAND_BACK_REDELIVERY_MS);
            return;
          }
          if (delivery !== undefined && onThisNode.activeCount + onThisNode.pendingCount >= holdLimit) {
            // Busy: give the message back, to be offered to the group again (another worker, or this one
            // once a slot is free). JetStream counts it as a delivery; the adapter's ack after a nak is a no-op.
            delivery.nak(Math.round(Math.min(BUSY_REDELIVERY_MAX_MS, Math.max(BUSY_REDELIVERY_MIN_MS, slots.recentHoldMs / 4))));
            return;
          }
          delivery?.working();
          const keepAlive = delivery === undefined ? undefined : setInterval(() => delivery.working(), HOLD_KEEPALIVE_MS);
          keepAlive?.unref();
          try {
            await onThisNode(async () => {
              if (stopping.signal.aborted) {
                delivery?.nak(HAND_BACK_REDELIVERY_MS);
                return;
              }
              delivery?.working();
              await run(slots.take());
            });
          } finally {
            clearInterval(keepAlive);
          }
        },
      },
    },
    methods: {
      /**
       * The node is stopping: take no new job, hand back those held but not started, and abandon running
       * ones (their processors see the abort) so that another worker takes them at once; resolves when
       * every job this node held has been handed back or finished, or at `deadline`.
       */
      async handBackJobs(deadline: number): Promise<void> {
        stopping.abort();
        while (onThisNode.activeCount + onThisNode.pendingCount > 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      },
    },
    actions: {
      /** Runs a reconciler round now (REPL, tests); answers how many items were re-enqueued. */
      reconcile: {
        visibility: "public",
        async handler(this: Service, _ctx: Context) {
          const round = await reconciler?.runNow();
          if (round?.outcome === "failed") throw new Error(`reconciler round failed: ${round.reason}`);
          return { requeued: round?.result ?? 0 };
        },
      },
    },
    started(this: Service) {
      const embedded = settings.transporter.kind === "none";
      reconciler = runtime.periodicTasks.schedule({
        name: "reconciler",
        schedule: { everyMs: jobs.reconcileIntervalSeconds * 1000 },
        leaseMs: Math.max(30_000, jobs.reconcileIntervalSeconds * 1000),
        runAtStart: true,
        // Embedded, this is the only worker: whatever waits at start (jobs handed back when it last stopped, or left
        // running when it died) waits for no one else.
        run: (trigger) => reconcile(this, trigger === "start" && embedded),
        log: this.logger,
      });
    },
    async stopped() {
      stopping.abort();
      await runtime.periodicTasks.unschedule(reconciler);
    },
  };
}

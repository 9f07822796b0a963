import { randomUUID } from "node:crypto";
import { isUnavailable } from "../errors";
import { retryDelayMs } from "./backoff";
import type { BackoffOptions } from "./backoff";
import type { ClaimDecision, FailureReason } from "./job-state";
import { isFailureReason } from "./job-state";
import type { JobMessage, ProcessingJob, ProcessingResult, ProcessorContext, ProcessorRegistry } from "./processor";
import type { ProgressStage } from "./progress-throttle";
import type { SlotTicket } from "./slot-queue";

/** The row as the claim returns it. */
export interface ClaimedRow {
  readonly ownerId: string;
  readonly kind: ProcessingJob["kind"];
  readonly mime: string;
  readonly originalKey: string;
}

/** An item and whose it is. */
export interface OwnedItem {
  readonly mediaId: string;
  readonly ownerId: string;
}

/** Everything the runner does to the outside world; the worker service binds these to broker calls. */
export interface JobPorts {
  /**
   * Applies decideClaim on the primary; undefined when the item no longer exists. `token` names this claim: asked again
   * with it, the claim answers `start` for the item it already holds (lib/jobs/job-state.ts).
   */
  claim(mediaId: string, token: string): Promise<{ decision: ClaimDecision; row: ClaimedRow } | undefined>;
  /** Records the result. `item` names the owner too: the owner's next reads must see it (read-your-writes). */
  complete(item: OwnedItem, result: ProcessingResult): Promise<void>;
  fail(item: OwnedItem, reason: FailureReason, detail: string): Promise<void>;
  /** Puts a failed attempt back to `uploaded` (touching it, so the reconciler waits a deadline). */
  release(mediaId: string): Promise<void>;
  /** Puts a job this worker holds under the claim `token` back to `uploaded`, its attempt not counted (nothing when it holds none). */
  handBack(mediaId: string, token: string): Promise<void>;
  /** Publishes the job again (a retry after its delay). */
  republish(message: JobMessage): Promise<void>;
  deadLetter(message: JobMessage, reason: FailureReason, detail: string): Promise<void>;
  /** Marks a sign of life on a running job, so that no one takes it over as stale. */
  heartbeat(mediaId: string): Promise<void>;
  progress(mediaId: string, ownerId: string, stage: ProgressStage, percent: number): void;
  /** A fresh context for one run; `cleanup` removes its temporary files. */
  openContext(job: ProcessingJob, report: (stage: ProgressStage, percent: number) => void): Promise<{ context: ProcessorContext; cleanup(): Promise<void> }>;
  sleep(ms: number): Promise<void>;
  log(level: "info" | "warn" | "error", message: string): void;
  /** Why a dependency is already known to be out of reach (the bucket's outage), or undefined when none is. */
  knownOutage(): string | undefined;
}

export interface RunnerOptions extends BackoffOptions {
  readonly maxAttempts: number;
  readonly heartbeatMs: number;
  /**
   * This job's place among the node's processing slots, taken when it arrived (default: run at once).
   * The original is fetched before the processor runs in it, so that a job waiting for its turn has
   * its original when the turn comes, and the slot is left when the processor starts storing its
   * variants, so that the next job computes meanwhile. The place is given up on every path that does
   * not use it.
   */
  readonly slot?: SlotTicket;
  /**
   * Aborted when this worker stops: a job not yet computing is handed back instead of started, and one
   * whose processor gives up on the abort is handed back instead of counted as a failure; both are
   * published again at once for another worker.
   */
  readonly stopping?: AbortSignal;
}

export type JobOutcome = "ready" | "failed" | "retry" | "skipped" | "no_processor" | "gone" | "handed_back";

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs one job message, idempotently: the row decides (finished → skip; someone alive on
 * it → skip; attempts used up → fail). Failures are recorded on the row; a transient one is
 * retried after a growing delay by republishing, which works the same on every channel
 * adapter (the in-memory one has no redelivery, and JetStream's is immediate). The message
 * is held during that delay, so a node dying meanwhile leaves it to redelivery or to the
 * reconciler. Throws only when the row itself could not be updated (database down): the
 * adapter then redelivers, after the delay waited here.
 */
export async function runJob(message: JobMessage, processors: ProcessorRegistry, ports: JobPorts, options: RunnerOptions): Promise<JobOutcome> {
  try {
    return await runClaimed(message, processors, ports, options);
  } finally {
    options.slot?.cancel();
  }
}

async function runClaimed(message: JobMessage, processors: ProcessorRegistry, ports: JobPorts, options: RunnerOptions): Promise<JobOutcome> {
  const processor = processors[message.kind as ProcessingJob["kind"]];
  // No processor here: leave the row `uploaded`, untouched, for when one is deployed.
  if (!processor) return "no_processor";

  // Waited for without claiming: the item does not show `processing` for the moment of each try.
  const outage = ports.knownOutage();
  if (outage !== undefined) return waitForDependency(message, outage, ports, options);

  const token = randomUUID();
  let claimed: Awaited<ReturnType<JobPorts["claim"]>>;
  try {
    claimed = await whileHeld(`the claim of ${message.id}`, () => ports.claim(message.id, token), ports, options);
  } catch (error) {
    options.slot?.cancel();
    // The claim may be recorded with every answer lost: given back, the redelivery finds the item free instead of taken.
    await ports.handBack(message.id, token).catch(() => undefined);
    await ports.sleep(retryDelayMs(1, options));
    throw error;
  }
  if (!claimed) return "gone";
  const { decision, row } = claimed;
  if (decision.action === "skip") return "skipped";
  if (decision.action === "exhaust") {
    const detail = `gave up after ${decision.attempts} attempts`;
    await ports.fail({ mediaId: message.id, ownerId: row.ownerId }, "processing_error", detail);
    await ports.deadLetter(message, "processing_error", detail);
    ports.progress(message.id, row.ownerId, "failed", 100);
    return "failed";
  }

  const job: ProcessingJob = {
    mediaId: message.id,
    ownerId: row.ownerId,
    kind: row.kind,
    mime: row.mime,
    originalKey: row.originalKey,
    attempt: decision.attempt,
  };
  const heartbeat = setInterval(() => void ports.heartbeat(job.mediaId).catch(() => undefined), options.heartbeatMs);
  heartbeat.unref();
  let result: ProcessingResult;
  try {
    const { context, cleanup } = await ports.openContext(job, (stage, percent) => ports.progress(job.mediaId, job.ownerId, stage, percent));
    try {
      const original = context.downloadOriginal();
      // Awaited in the slot; a failure there is the processor's failure, not an unhandled one here.
      original.catch(() => undefined);
      const work = async (leave: () => void) => {
        await original;
        if (options.stopping?.aborted) throw new HandedBack();
        ports.progress(job.mediaId, job.ownerId, "processing", 0);
        return processor(job, {
          ...context,
          saveVariants: (variants) => {
            leave();
            return context.saveVariants(variants);
          },
        });
      };
      result = await (options.slot ? options.slot.run(work) : work(() => undefined));
    } finally {
      await cleanup().catch((error: unknown) => ports.log("warn", `could not clean up after ${job.mediaId}: ${describe(error)}`));
    }
  } catch (error) {
    clearInterval(heartbeat);
    if (error instanceof HandedBack || options.stopping?.aborted) return handBack(message, job, token, ports);
    if (isUnavailable(error)) return waitForDependency(message, error, ports, options, { job, token });
    return afterFailure(message, job, error, ports, options);
  }
  ports.progress(job.mediaId, job.ownerId, "storing", 100);
  try {
    // Still beating while the completion is tried again: a finished job is not taken back as stale meanwhile.
    await whileHeld(`the completion of ${job.mediaId}`, () => ports.complete(job, result), ports, options);
  } finally {
    clearInterval(heartbeat);
  }
  ports.progress(job.mediaId, job.ownerId, "ready", 100);
  return "ready";
}

/**
 * A change of a claimed row (the claim itself, its completion, its release for a retry), tried again with the retry
 * delays while this worker holds the message. Thrown at once, the message would go back to the channel and its
 * redelivery would find the row `processing` with a recent sign of life, take it for a live worker's and be
 * acknowledged: the item would stay `processing` until the reconciler's deadline (JOB_DEADLINE_SECONDS). The changes
 * are idempotent (the claim through its token), so one whose answer was lost (a call timed out after the media
 * service made it) is harmless to repeat.
 */
async function whileHeld<T>(what: string, change: () => Promise<T>, ports: JobPorts, options: RunnerOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await change();
    } catch (error) {
      if (attempt >= options.maxAttempts || options.stopping?.aborted) throw error;
      const delay = retryDelayMs(attempt, options);
      ports.log("warn", `could not record ${what} (${describe(error)}); trying again in ${delay} ms`);
      await ports.sleep(delay);
    }
  }
}

/** Thrown in place of starting a processor on a worker that is stopping. */
class HandedBack extends Error {
  constructor() {
    super("the worker is stopping");
  }
}

async function handBack(message: JobMessage, job: ProcessingJob, token: string, ports: JobPorts): Promise<JobOutcome> {
  ports.log("info", `${job.mediaId} handed back: this worker is stopping`);
  await ports.handBack(job.mediaId, token);
  ports.progress(job.mediaId, job.ownerId, "queued", 0);
  await ports.republish(message);
  return "handed_back";
}

/**
 * A dependency out of reach (the file store, another service) is not the item's fault: the attempt, when `claimed`,
 * is given back uncounted, and the job tried again after the longest retry delay, so an outage longer than all the
 * retries leaves the item waiting for it rather than failed.
 */
async function waitForDependency(
  message: JobMessage,
  error: unknown,
  ports: JobPorts,
  options: RunnerOptions,
  claimed?: { job: ProcessingJob; token: string },
): Promise<JobOutcome> {
  options.slot?.cancel();
  const delay = retryDelayMs(options.maxAttempts, options);
  ports.log("warn", `${message.id} waits for a dependency (${describe(error)}), trying again in ${delay} ms; the attempt is not counted`);
  if (claimed) {
    await whileHeld(`the hand-back of ${message.id}`, () => ports.handBack(message.id, claimed.token), ports, options);
    ports.progress(message.id, claimed.job.ownerId, "queued", 0);
  }
  await ports.sleep(delay);
  await ports.republish(message);
  return "retry";
}

async function afterFailure(message: JobMessage, job: ProcessingJob, error: unknown, ports: JobPorts, options: RunnerOptions): Promise<JobOutcome> {
  // Not while waiting for a retry (openContext may have failed before the place was used).
  options.slot?.cancel();
  const failure = error as { permanent?: unknown; reason?: unknown };
  const reason: FailureReason = isFailureReason(failure.reason) ? failure.reason : "processing_error";
  const detail = describe(error);
  if (failure.permanent === true) {
    ports.log("info", `${job.mediaId} failed (${reason}, not retried): ${detail}`);
    await ports.fail(job, reason, detail);
    ports.progress(job.mediaId, job.ownerId, "failed", 100);
    return "failed";
  }
  if (job.attempt >= options.maxAttempts) {
    ports.log("warn", `${job.mediaId} failed after ${job.attempt} attempts (${reason}): ${detail}`);
    await ports.fail(job, reason, detail);
    await ports.deadLetter(message, reason, detail);
    ports.progress(job.mediaId, job.ownerId, "failed", 100);
    return "failed";
  }
  const delay = retryDelayMs(job.attempt, options);
  ports.log("warn", `${job.mediaId} attempt ${job.attempt} failed (${reason}), retrying in ${delay} ms: ${detail}`);
  await whileHeld(`the release of ${job.mediaId}`, () => ports.release(job.mediaId), ports, options);
  ports.progress(job.mediaId, job.ownerId, "queued", 0);
  await ports.sleep(delay);
  await ports.republish(message);
  return "retry";
}

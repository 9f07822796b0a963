/**
 * The processing state machine of a media item: `uploaded → processing → ready | failed`.
 * Pure rules: the media service applies them inside its write transaction, so that two
 * workers holding the same (redelivered) message cannot both claim the item.
 */
export type MediaStatus = "uploaded" | "processing" | "ready" | "failed";

/** Stable failure codes the owner can read (the API contract). */
export const FAILURE_REASONS = [
  "unsupported_format",
  "corrupt",
  "too_many_pixels",
  "too_long",
  "no_media_stream",
  "processing_timeout",
  "processing_error",
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export function isFailureReason(value: unknown): value is FailureReason {
  return typeof value === "string" && (FAILURE_REASONS as readonly string[]).includes(value);
}

/** What the claim needs to know of the row. */
export interface ClaimableRow {
  readonly status: MediaStatus;
  readonly attempts: number;
  /** Last sign of life (ms): a worker's progress and heartbeats touch it. */
  readonly updatedAt: number;
  /** The token of the latest claim that started it (null before any, or from a claim without one). */
  readonly claimToken?: string | null;
}

export type ClaimDecision =
  /** Run it: status becomes `processing`, attempts + 1; `again`: the same claim asked twice, already `processing` under it (nothing to change). */
  | { readonly action: "start"; readonly attempt: number; readonly again?: true }
  /** Already finished (ready or failed): a duplicate or late message; acknowledge and do nothing. */
  | { readonly action: "skip"; readonly why: "finished" }
  /** Another worker is on it and alive: leave it to that worker (the reconciler watches it). */
  | { readonly action: "skip"; readonly why: "in_progress" }
  /** The same claim asked again after its attempt ended (released, handed back, taken back as stale): a late duplicate. */
  | { readonly action: "skip"; readonly why: "claim_ended" }
  /** Attempts used up (e.g. a worker crashed every time): fail it and dead-letter the message. */
  | { readonly action: "exhaust"; readonly attempts: number };

/**
 * Whether a worker may take the item now. A `processing` row whose last sign of life is
 * older than `staleAfterMs` belonged to a worker that died: it may be taken over.
 * `force` (reprocessing by an admin) starts over from a finished state.
 * `token` names the claim (one per job message a worker handles): a worker whose claim's answer was
 * lost (a call timed out after the database recorded it) asks again with the same token and gets the
 * item it holds, instead of being refused as if another worker were on it.
 */
export function decideClaim(
  row: ClaimableRow,
  now: number,
  options: { maxAttempts: number; staleAfterMs: number; force?: boolean; token?: string },
): ClaimDecision {
  if (row.status === "ready" || row.status === "failed") {
    if (!options.force) return { action: "skip", why: "finished" };
    return { action: "start", attempt: 1 };
  }
  if (options.token !== undefined && row.claimToken === options.token) {
    if (row.status === "processing") return { action: "start", attempt: row.attempts, again: true };
    return { action: "skip", why: "claim_ended" };
  }
  if (row.status === "processing" && now - row.updatedAt < options.staleAfterMs) return { action: "skip", why: "in_progress" };
  if (row.attempts >= options.maxAttempts) return { action: "exhaust", attempts: row.attempts };
  return { action: "start", attempt: row.attempts + 1 };
}

/** A running job shows a sign of life at most this often. */
const SHORTEST_HEARTBEAT_MS = 1000;
/** setInterval's longest period (about 24.8 days): a longer one fires every millisecond instead. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/**
 * How often a running job shows a sign of life, so that it is not taken for a dead worker's (re-enqueued by the
 * reconciler, taken over by a claim) after `deadlineSeconds` (JOB_DEADLINE_SECONDS) of silence: a quarter of it.
 */
export function heartbeatIntervalMs(deadlineSeconds: number): number {
  return Math.min(LONGEST_TIMER_MS, Math.max(SHORTEST_HEARTBEAT_MS, (deadlineSeconds * 1000) / 4));
}

/**
 * Whether running jobs' signs of life come often enough for this deadline: at least two per deadline, so that one
 * late heartbeat does not make a live job look dead. Shorter deadlines than the heartbeat allows fail this.
 */
export function deadlineOutlivesHeartbeats(deadlineSeconds: number): boolean {
  return heartbeatIntervalMs(deadlineSeconds) * 2 <= deadlineSeconds * 1000;
}

/** Allowed transitions; anything else is a bug or a stale worker and is refused. */
const TRANSITIONS: Readonly<Record<MediaStatus, readonly MediaStatus[]>> = {
  uploaded: ["processing", "failed"],
  processing: ["processing", "uploaded", "ready", "failed"],
  ready: ["processing"],
  failed: ["processing"],
};

export function canTransition(from: MediaStatus, to: MediaStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

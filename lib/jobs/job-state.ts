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
}

export type ClaimDecision =
  /** Run it: status becomes `processing`, attempts + 1. */
  | { readonly action: "start"; readonly attempt: number }
  /** Already finished (ready or failed): a duplicate or late message; acknowledge and do nothing. */
  | { readonly action: "skip"; readonly why: "finished" }
  /** Another worker is on it and alive: leave it to that worker (the reconciler watches it). */
  | { readonly action: "skip"; readonly why: "in_progress" }
  /** Attempts used up (e.g. a worker crashed every time): fail it and dead-letter the message. */
  | { readonly action: "exhaust"; readonly attempts: number };

/**
 * Whether a worker may take the item now. A `processing` row whose last sign of life is
 * older than `staleAfterMs` belonged to a worker that died: it may be taken over.
 * `force` (reprocessing by an admin) starts over from a finished state.
 */
export function decideClaim(row: ClaimableRow, now: number, options: { maxAttempts: number; staleAfterMs: number; force?: boolean }): ClaimDecision {
  if (row.status === "ready" || row.status === "failed") {
    if (!options.force) return { action: "skip", why: "finished" };
    return { action: "start", attempt: 1 };
  }
  if (row.status === "processing" && now - row.updatedAt < options.staleAfterMs) return { action: "skip", why: "in_progress" };
  if (row.attempts >= options.maxAttempts) return { action: "exhaust", attempts: row.attempts };
  return { action: "start", attempt: row.attempts + 1 };
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

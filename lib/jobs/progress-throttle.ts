/** Progress stages pushed to the owner (the API contract). */
export const PROGRESS_STAGES = ["queued", "processing", "storing", "ready", "failed"] as const;
export type ProgressStage = (typeof PROGRESS_STAGES)[number];

export interface ProgressUpdate {
  readonly mediaId: string;
  readonly stage: ProgressStage;
  readonly percent: number;
}

/**
 * Decides which progress reports go out: at most one per `intervalMs` per item, but a
 * change of stage always goes at once (so `ready`/`failed` are never swallowed), and an
 * unchanged report is never repeated. ffmpeg reports many times a second; browsers and
 * the database need a few.
 */
export class ProgressThrottle {
  private readonly last = new Map<string, { stage: ProgressStage; percent: number; at: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when this update should be sent; records it as sent. */
  admit(update: ProgressUpdate): boolean {
    const at = this.now();
    const previous = this.last.get(update.mediaId);
    const percent = clampPercent(update.percent);
    const send =
      !previous ||
      previous.stage !== update.stage ||
      (percent !== previous.percent && at - previous.at >= this.intervalMs);
    if (send) this.last.set(update.mediaId, { stage: update.stage, percent, at });
    return send;
  }

  /** Forgets an item once its job is over (bounded memory). */
  forget(mediaId: string): void {
    this.last.delete(mediaId);
  }
}

/**
 * Whether a report tells the row something its other writes do not: the claim records `processing`
 * at 0, and the completion that follows `storing` at 100 records `ready`. Each recorded report is a
 * write on the primary and a cache clean, so those two are only pushed to the owner.
 */
export function addsToRow(stage: ProgressStage, percent: number): boolean {
  return (stage === "processing" && percent > 0) || (stage === "storing" && percent < 100);
}

export function clampPercent(percent: number): number {
  if (!Number.isFinite(percent)) return 0;
  return Math.max(0, Math.min(100, Math.round(percent)));
}

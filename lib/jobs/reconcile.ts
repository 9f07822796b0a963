/** What the reconciler sees of a row that may be stuck. */
export interface StuckCandidate {
  readonly id: string;
  readonly ownerId: string;
  readonly kind: string;
  readonly status: string;
  readonly updatedAt: number;
}

export interface ReconcilePlan {
  /** To publish again (their message was lost, or their worker died). */
  readonly requeue: readonly StuckCandidate[];
  /**
   * Those of them still `processing` under a worker known to be gone (`runningAreOrphans`): put back to `uploaded`
   * first, or the claim would take the recent sign of life of the dead worker for a live one's and skip them.
   */
  readonly orphaned: readonly StuckCandidate[];
  /** Kinds that no processor on this node handles, with how many items wait for one. */
  readonly waiting: ReadonlyMap<string, number>;
}

/**
 * Chooses what to re-enqueue: rows in `uploaded` or `processing` untouched for longer than
 * the deadline, of a kind some processor handles. Items of other kinds are left alone (they
 * wait for their processor to be deployed) and only counted, so the reconciler does not
 * republish them every round. `runningAreOrphans`: no worker but this one can hold an item (embedded mode,
 * at start), so one found `processing` was left so by a process that died.
 */
export function planReconcile(
  candidates: readonly StuckCandidate[],
  now: number,
  options: { deadlineMs: number; kinds: ReadonlySet<string>; runningAreOrphans?: boolean },
): ReconcilePlan {
  const requeue: StuckCandidate[] = [];
  const waiting = new Map<string, number>();
  for (const row of candidates) {
    if (row.status !== "uploaded" && row.status !== "processing") continue;
    if (now - row.updatedAt < options.deadlineMs) continue;
    if (!options.kinds.has(row.kind)) {
      waiting.set(row.kind, (waiting.get(row.kind) ?? 0) + 1);
      continue;
    }
    requeue.push(row);
  }
  const orphaned = options.runningAreOrphans ? requeue.filter((row) => row.status === "processing") : [];
  return { requeue, orphaned, waiting };
}

/** Remembers which "waiting for a processor" messages were logged, so each is logged once per node. */
export class OnceLog {
  private readonly seen = new Set<string>();

  /** True the first time a key is seen. */
  first(key: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }
}

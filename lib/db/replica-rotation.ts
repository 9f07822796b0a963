/**
 * Which replicas may serve reads. Pure bookkeeping; the probe that feeds it lives in
 * replicated-database.ts.
 *
 * Lag is measured by replication position, not by Seconds_Behind_Master (NULL when the
 * SQL thread is stopped, and only 1 s coarse): every probe notes the primary's current
 * position and when it was first seen; a replica's lag is the age of the oldest noted
 * position it has not yet applied. An idle primary therefore never makes a replica look
 * late, and a stopped SQL thread shows a lag that grows with the primary's writes.
 */

export interface ReplicaThresholds {
  readonly maxLagSeconds: number;
  readonly rejoinLagSeconds: number;
}

export interface ReplicaProbe {
  readonly reachable: boolean;
  readonly lagSeconds: number | null;
}

/** A replica leaves when unreachable or lagging past the maximum; it rejoins once reachable and back under the rejoin lag. */
export function nextInRotation(current: boolean, probe: ReplicaProbe, thresholds: ReplicaThresholds): boolean {
  if (!probe.reachable || probe.lagSeconds === null) return false;
  if (current) return probe.lagSeconds <= thresholds.maxLagSeconds;
  return probe.lagSeconds <= thresholds.rejoinLagSeconds;
}

interface PendingPosition {
  readonly position: string;
  readonly observedAt: number;
}

/** Most positions kept per replica; past it the middle ones are dropped so the oldest (which sets the lag) stays. */
const MAX_PENDING = 64;

export class ReplicaLagTracker {
  private readonly pending = new Map<string, PendingPosition[]>();
  private lastPrimaryPosition: string | null = null;

  constructor(replicaIds: readonly string[]) {
    for (const id of replicaIds) this.pending.set(id, []);
  }

  /** Records the primary's position as seen at `now` (ms). Unchanged positions add nothing. */
  observePrimary(position: string, now: number): void {
    if (position === "" || position === this.lastPrimaryPosition) return;
    this.lastPrimaryPosition = position;
    for (const queue of this.pending.values()) {
      queue.push({ position, observedAt: now });
      if (queue.length > MAX_PENDING) queue.splice(1, 1);
    }
  }

  /** Positions the replica must be checked against, oldest first. */
  positionsToCheck(replicaId: string): readonly string[] {
    return (this.pending.get(replicaId) ?? []).map((entry) => entry.position);
  }

  /**
   * Takes the result of checking positionsToCheck(replicaId) (same order) and returns the
   * replica's lag in seconds at `now`.
   */
  recordApplied(replicaId: string, applied: readonly boolean[], now: number): number {
    const queue = this.pending.get(replicaId);
    if (!queue) throw new Error(`unknown replica ${replicaId}`);
    const checked = queue.splice(0, applied.length);
    const stillPending = checked.filter((_, index) => !applied[index]);
    queue.unshift(...stillPending);
    const oldest = queue[0];
    return oldest === undefined ? 0 : Math.max(0, (now - oldest.observedAt) / 1000);
  }
}

/** Round-robin over the replicas currently in rotation; undefined when there is none. */
export class RoundRobin<T> {
  private next = 0;

  pick(candidates: readonly T[]): T | undefined {
    if (candidates.length === 0) return undefined;
    const chosen = candidates[this.next % candidates.length];
    this.next = (this.next + 1) % Number.MAX_SAFE_INTEGER;
    return chosen;
  }
}

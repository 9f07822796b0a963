import { randomUUID } from "node:crypto";
import { dayOf, deltaField, deltasOf, hourOf, VIEW_DEDUPE_SECONDS } from "./view-store";
import type { ApplyViews, ViewStore } from "./view-store";

/** The embedded node's counters: in memory until flushed (the node flushes when it stops). */
export class MemoryViewStore implements ViewStore {
  private pending = new Map<string, number>();
  /** item|viewer → when the dedupe window ends. */
  private readonly seen = new Map<string, number>();
  /** day|item → viewers seen that day. */
  private readonly viewersOfDay = new Map<string, Set<string>>();

  async record(mediaId: string, viewerKey: string, now: number): Promise<boolean> {
    const seenKey = `${mediaId}|${viewerKey}`;
    if ((this.seen.get(seenKey) ?? 0) > now) return false;
    this.seen.set(seenKey, now + VIEW_DEDUPE_SECONDS * 1000);
    const hour = hourOf(now);
    this.add(deltaField("v", hour, mediaId), 1);
    const dayKey = `${dayOf(now)}|${mediaId}`;
    const viewers = this.viewersOfDay.get(dayKey) ?? new Set<string>();
    this.viewersOfDay.set(dayKey, viewers);
    if (!viewers.has(viewerKey)) {
      viewers.add(viewerKey);
      this.add(deltaField("u", hour, mediaId), 1);
    }
    return true;
  }

  async flush(apply: ApplyViews, now = Date.now()): Promise<number> {
    this.forgetOld(now);
    if (this.pending.size === 0) return 0;
    const taken = this.pending;
    this.pending = new Map();
    const deltas = deltasOf(taken);
    try {
      await apply({ id: randomUUID(), deltas });
    } catch (error) {
      // Back into the counters, to go with the next flush.
      for (const [field, count] of taken) this.add(field, count);
      throw error;
    }
    return deltas.reduce((sum, delta) => sum + delta.views, 0);
  }

  private add(field: string, count: number): void {
    this.pending.set(field, (this.pending.get(field) ?? 0) + count);
  }

  private forgetOld(now: number): void {
    for (const [key, until] of this.seen) if (until <= now) this.seen.delete(key);
    const today = dayOf(now);
    for (const key of this.viewersOfDay.keys()) if (Number(key.split("|")[0]) < today) this.viewersOfDay.delete(key);
  }
}

import { createHmac } from "node:crypto";

/** Views of one item in one hour, and how many of them were a viewer's first of the day for that item. */
export interface ViewDelta {
  readonly mediaId: string;
  /** Start of the hour (UTC), milliseconds since the epoch. */
  readonly hour: number;
  readonly views: number;
  readonly uniqueViewers: number;
}

/** Counted views taken out of the store together; `id` names the batch, so applying it twice counts it once. */
export interface ViewBatch {
  readonly id: string;
  readonly deltas: readonly ViewDelta[];
}

/** Applies a batch to the database; resolves once it is durably counted (or was already). */
export type ApplyViews = (batch: ViewBatch) => Promise<void>;

/**
 * Where views are counted between the request and the database: Redis in cluster mode, this
 * process's memory when embedded. `record` is one round trip; `flush` moves what was counted to
 * the database and loses nothing when the apply fails or the node stops half-way.
 */
export interface ViewStore {
  /** Counts the view unless this viewer already viewed the item within the dedupe window; true when counted. */
  record(mediaId: string, viewerKey: string, now: number): Promise<boolean>;
  /** Hands what was counted to `apply` in batches; returns the number of views moved. */
  flush(apply: ApplyViews): Promise<number>;
}

export const VIEW_DEDUPE_SECONDS = 30 * 60;
const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;

export function hourOf(at: number): number {
  return at - (at % HOUR_MS);
}

export function dayOf(at: number): number {
  return at - (at % DAY_MS);
}

/**
 * Who viewed, without keeping who it was: a keyed hash of the session id, or of the address and user
 * agent for visitors without one. The key is the site's runtime secret, so the hash cannot be
 * reversed by trying addresses; the address itself is never stored.
 */
export function viewerKey(secret: string, viewer: { sessionId?: string; ip?: string; userAgent?: string }): string {
  const identity = viewer.sessionId !== undefined ? `s:${viewer.sessionId}` : `a:${viewer.ip ?? ""}|${viewer.userAgent ?? ""}`;
  return createHmac("sha256", `${secret}:views`).update(identity).digest("base64url").slice(0, 22);
}

/** The field of a pending count: `v` (views) or `u` (new unique viewers), the hour, the item. */
export function deltaField(kind: "v" | "u", hour: number, mediaId: string): string {
  return `${kind}:${hour}:${mediaId}`;
}

/** Pending counts (field → count) as deltas; unknown fields are ignored. */
export function deltasOf(counts: Iterable<[string, number]>): ViewDelta[] {
  const byItemHour = new Map<string, { mediaId: string; hour: number; views: number; uniqueViewers: number }>();
  for (const [field, count] of counts) {
    const match = /^([vu]):(\d+):(.+)$/.exec(field);
    if (!match || !Number.isFinite(count) || count <= 0) continue;
    const [, kind, hour, mediaId] = match as unknown as [string, "v" | "u", string, string];
    const key = `${hour}:${mediaId}`;
    const delta = byItemHour.get(key) ?? { mediaId, hour: Number(hour), views: 0, uniqueViewers: 0 };
    if (kind === "v") delta.views += count;
    else delta.uniqueViewers += count;
    byItemHour.set(key, delta);
  }
  return [...byItemHour.values()];
}

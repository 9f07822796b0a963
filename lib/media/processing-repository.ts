import type { Database } from "../db/database";
import type { MediaDatabase } from "../db/schemas/media";
import { canTransition, decideClaim } from "../jobs/job-state";
import type { ClaimDecision, FailureReason } from "../jobs/job-state";
import type { StoredVariant } from "../jobs/processor";
import type { StuckCandidate } from "../jobs/reconcile";
import type { MediaRow } from "./media-view";

export interface ClaimOutcome {
  readonly decision: ClaimDecision;
  readonly row: MediaRow;
}

export interface Finish {
  readonly width?: number | null;
  readonly height?: number | null;
  readonly durationSeconds?: number | null;
  readonly placeholder?: string | null;
  /** From the file's own tags (audio); used only when the owner gave no title. */
  readonly title?: string | null;
}

/** SQL of the processing state machine (uploaded → processing → ready | failed); the rules are lib/jobs/job-state.ts. */
export class ProcessingRepository {
  constructor(private readonly db: Database<MediaDatabase>) {}

  /**
   * Decides and records the claim in one transaction on the primary, with the row locked
   * (the no-op UPDATE takes the lock on MariaDB/MySQL), so that two workers holding the same
   * redelivered message cannot both start it. The claim's token is recorded with it: the same
   * token asking again gets the item back (a sign of life, nothing else changed).
   */
  claim(id: string, now: number, options: { maxAttempts: number; staleAfterMs: number; force?: boolean; token?: string }): Promise<ClaimOutcome | undefined> {
    return this.db.write(async (trx) => {
      await trx.updateTable("media").set((eb) => ({ updated_at: eb.ref("updated_at") })).where("id", "=", id).execute();
      const row = await trx.selectFrom("media").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) return undefined;
      const claimable = { status: row.status, attempts: Number(row.attempts), updatedAt: Number(row.updated_at), claimToken: row.claim_token ?? null };
      const decision = decideClaim(claimable, now, options);
      if (decision.action !== "start") return { decision, row };
      const changes = decision.again
        ? { updated_at: now }
        : {
            status: "processing" as const,
            reason: null,
            attempts: decision.attempt,
            progress_stage: "processing",
            progress_percent: 0,
            processing_started_at: now,
            claim_token: options.token ?? null,
            updated_at: now,
          };
      await trx.updateTable("media").set(changes).where("id", "=", id).execute();
      return { decision, row: { ...row, ...changes } };
    });
  }

  /**
   * Applies a transition when the state machine allows it from the row's current status (and, with `claimToken`, while the
   * row is held under that claim); returns the row after, or undefined.
   */
  private transition(
    id: string,
    to: MediaRow["status"],
    changes: Partial<MediaRow> | ((row: MediaRow) => Partial<MediaRow>),
    now: number,
    claimToken?: string,
  ): Promise<MediaRow | undefined> {
    return this.db.write(async (trx) => {
      const row = await trx.selectFrom("media").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row || !canTransition(row.status, to)) return undefined;
      if (claimToken !== undefined && row.claim_token !== claimToken) return undefined;
      const all = { ...(typeof changes === "function" ? changes(row) : changes), status: to, updated_at: now };
      let update = trx.updateTable("media").set(all).where("id", "=", id).where("status", "=", row.status);
      if (claimToken !== undefined) update = update.where("claim_token", "=", claimToken);
      const { numUpdatedRows } = await update.executeTakeFirst();
      if (claimToken !== undefined && numUpdatedRows === 0n) return undefined;
      return { ...row, ...all };
    });
  }

  complete(id: string, finish: Finish, now: number): Promise<MediaRow | undefined> {
    return this.transition(
      id,
      "ready",
      (row) => ({
        reason: null,
        width: finish.width ?? null,
        height: finish.height ?? null,
        duration_seconds: finish.durationSeconds ?? null,
        placeholder: finish.placeholder ?? null,
        title: row.title ?? finish.title?.slice(0, 200) ?? null,
        progress_stage: "ready",
        progress_percent: 100,
        finished_at: now,
      }),
      now,
    );
  }

  fail(id: string, reason: FailureReason, now: number): Promise<MediaRow | undefined> {
    return this.transition(id, "failed", { reason, progress_stage: "failed", progress_percent: 100, finished_at: now }, now);
  }

  /** A failed attempt goes back to the queue. */
  release(id: string, now: number): Promise<MediaRow | undefined> {
    return this.transition(id, "uploaded", { progress_stage: "queued", progress_percent: 0 }, now);
  }

  /**
   * A job handed back by a stopping worker goes back to the queue without using up an attempt:
   * the worker's stop is not the item's fault. With `claimToken`, only while the item is held under
   * that claim: a worker giving back a claim whose answer it never got leaves another worker's alone.
   */
  handBack(id: string, now: number, claimToken?: string): Promise<MediaRow | undefined> {
    return this.transition(
      id,
      "uploaded",
      (row) => ({ attempts: Math.max(0, Number(row.attempts) - 1), progress_stage: "queued", progress_percent: 0 }),
      now,
      claimToken,
    );
  }

  /** Progress and sign of life of a running job; only while it is `processing`. */
  async progress(id: string, stage: string | undefined, percent: number | undefined, now: number): Promise<boolean> {
    const result = await this.db.write((trx) =>
      trx
        .updateTable("media")
        .set({ updated_at: now, ...(stage !== undefined ? { progress_stage: stage, progress_percent: percent ?? 0 } : {}) })
        .where("id", "=", id)
        .where("status", "=", "processing")
        .executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /**
   * Records an item's variants in one transaction, replacing those of the same names (a rerun
   * overwrites, never duplicates), and returns the object keys of the variants replaced, which
   * nothing refers to any more. One transaction per item, not one per variant: fewer round trips,
   * and no concurrent delete-then-insert transactions on one item, whose gap locks block each other
   * on InnoDB.
   */
  async saveVariants(mediaId: string, variants: readonly StoredVariant[], now: number): Promise<string[]> {
    if (variants.length === 0) return [];
    return this.db.write(async (trx) => {
      const names = variants.map((variant) => variant.name);
      const replaced = await trx.selectFrom("variants").select("object_key").where("media_id", "=", mediaId).where("name", "in", names).execute();
      // Only when there is something to replace: deleting absent rows takes gap locks on MariaDB, and two workers
      // recording different items' first variants at once would then deadlock on their inserts.
      if (replaced.length > 0) await trx.deleteFrom("variants").where("media_id", "=", mediaId).where("name", "in", names).execute();
      await trx
        .insertInto("variants")
        .values(
          variants.map((variant) => ({
            media_id: mediaId,
            name: variant.name,
            object_key: variant.objectKey,
            mime: variant.mime,
            width: variant.width ?? null,
            height: variant.height ?? null,
            duration_seconds: variant.durationSeconds ?? null,
            bytes: variant.bytes,
            created_at: now,
          })),
        )
        .execute();
      const kept = new Set(variants.map((variant) => variant.objectKey));
      return replaced.map((row) => row.object_key).filter((key) => !kept.has(key));
    });
  }

  /** Rows in `uploaded` or `processing` not touched since `before`, oldest first (uses media_status_updated). */
  async stuck(before: number, limit: number): Promise<StuckCandidate[]> {
    const rows = await this.db.readLatest((db) =>
      db
        .selectFrom("media")
        .select(["id", "owner_id", "kind", "status", "updated_at"])
        .where("status", "in", ["uploaded", "processing"])
        .where("updated_at", "<", before)
        .orderBy("updated_at", "asc")
        .limit(limit)
        .execute(),
    );
    return rows.map((row) => ({ id: row.id, ownerId: row.owner_id, kind: row.kind, status: row.status, updatedAt: Number(row.updated_at) }));
  }

  /**
   * Marks re-enqueued rows as nudged now, so the next round waits a whole deadline before
   * nudging them again. A row left in `processing` by a worker that died goes back to
   * `uploaded` (only if it is still silent past `staleBefore`), or the next claim would
   * take it for a live job and skip it.
   */
  async touchQueued(ids: readonly string[], now: number, staleBefore: number): Promise<void> {
    if (ids.length === 0) return;
    await this.db.write(async (trx) => {
      await trx
        .updateTable("media")
        .set({ status: "uploaded", progress_stage: "queued", progress_percent: 0, updated_at: now })
        .where("id", "in", [...ids])
        .where("status", "=", "processing")
        .where("updated_at", "<", staleBefore)
        .execute();
      await trx.updateTable("media").set({ updated_at: now }).where("id", "in", [...ids]).where("status", "=", "uploaded").execute();
    });
  }

  /**
   * Puts a finished item (ready or failed) back in the queue: status uploaded, attempts and
   * progress cleared. Items already queued or in work are left as they are, so asking twice
   * does no harm. Undefined when there is no such item.
   */
  async resetForReprocessing(id: string, now: number): Promise<{ id: string; ownerId: string; kind: string } | undefined> {
    return this.db.write(async (trx) => {
      await trx
        .updateTable("media")
        .set({ status: "uploaded", reason: null, attempts: 0, progress_stage: null, progress_percent: null, finished_at: null, updated_at: now })
        .where("id", "=", id)
        .where("status", "in", ["ready", "failed"])
        .execute();
      const row = await trx.selectFrom("media").select(["id", "owner_id", "kind"]).where("id", "=", id).executeTakeFirst();
      return row && { id: row.id, ownerId: row.owner_id, kind: row.kind };
    });
  }
}

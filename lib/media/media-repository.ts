import type { ExpressionBuilder, Kysely, SelectQueryBuilder, Transaction } from "kysely";
import type { Database } from "../db/database";
import type { MediaDatabase, MediaTombstonesTable } from "../db/schemas/media";
import { NotFoundError } from "../errors";
import type { ListPosition, PopularPosition } from "./cursor";
import type { MediaRow, VariantRow } from "./media-view";

export type TombstoneRow = MediaTombstonesTable;

/** A page of items, newest first, with the variants of each (in name order). */
export interface MediaPage {
  readonly rows: MediaRow[];
  readonly variants: Map<string, VariantRow[]>;
}

/** The fields an edit may change. */
export interface MediaEdit {
  readonly title?: string | null;
  readonly description?: string | null;
  readonly visibility?: MediaRow["visibility"];
}

/** The only place media SQL is written. Reads say whether they may use a replica (read) or need the primary (readLatest). */
export class MediaRepository {
  constructor(private readonly db: Database<MediaDatabase>) {}

  findById(id: string): Promise<MediaRow | undefined> {
    return this.db.read((db) => db.selectFrom("media").selectAll().where("id", "=", id).executeTakeFirst());
  }

  /** For decisions before a write: a lagging replica must not say "not found" for an item that exists. */
  findByIdLatest(id: string): Promise<MediaRow | undefined> {
    return this.db.readLatest((db) => db.selectFrom("media").selectAll().where("id", "=", id).executeTakeFirst());
  }

  findByContentLatest(ownerId: string, sha256: string): Promise<MediaRow | undefined> {
    return this.db.readLatest((db) =>
      db.selectFrom("media").selectAll().where("owner_id", "=", ownerId).where("sha256", "=", sha256).executeTakeFirst(),
    );
  }

  /** Throws the driver's unique violation when the id, or the owner's content, is already there. */
  async insert(row: MediaRow): Promise<void> {
    await this.db.write((trx) => trx.insertInto("media").values(row).execute());
  }

  async variantsOf(mediaIds: readonly string[]): Promise<Map<string, VariantRow[]>> {
    const byMedia = new Map<string, VariantRow[]>(mediaIds.map((id) => [id, []]));
    if (mediaIds.length === 0) return byMedia;
    const rows = await this.db.read((db) => db.selectFrom("variants").selectAll().where("media_id", "in", [...mediaIds]).execute());
    for (const row of rows) byMedia.get(row.media_id)?.push(row);
    return byMedia;
  }

  /** The public feed: public items that are ready, newest first, starting after `position`; `limit` rows at most (index media_visibility_status_created). */
  listPublic(position: ListPosition | undefined, limit: number): Promise<MediaPage> {
    return this.db.read((db) => {
      let query = db.selectFrom("media").selectAll().where("visibility", "=", "public").where("status", "=", "ready");
      if (position) query = query.where((eb) => olderThan(eb, position));
      return pageWithVariants(db, query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit));
    });
  }

  /**
   * The popular feed: public items that are ready, by their flushed all-time view count, most viewed
   * first, ties newest id first; starting after `position` (index media_public_popular).
   */
  listPublicPopular(position: PopularPosition | undefined, limit: number): Promise<MediaRow[]> {
    return this.db.read((db) => {
      let query = db.selectFrom("media").selectAll().where("visibility", "=", "public").where("status", "=", "ready");
      if (position) {
        query = query.where((eb) =>
          eb.or([eb("views", "<", position.views), eb.and([eb("views", "=", position.views), eb("id", "<", position.id)])]),
        );
      }
      return query.orderBy("views", "desc").orderBy("id", "desc").limit(limit).execute();
    });
  }

  listByOwner(ownerId: string, position: ListPosition | undefined, limit: number): Promise<MediaPage> {
    return this.db.read((db) => {
      let query = db.selectFrom("media").selectAll().where("owner_id", "=", ownerId);
      if (position) query = query.where((eb) => olderThan(eb, position));
      return pageWithVariants(db, query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit));
    });
  }

  /** Up to `limit` of the owner's items, from the primary (for deleting them all). */
  someOfOwnerLatest(ownerId: string, limit: number): Promise<MediaRow[]> {
    return this.db.readLatest((db) => db.selectFrom("media").selectAll().where("owner_id", "=", ownerId).limit(limit).execute());
  }

  /**
   * Applies an edit in one transaction on the primary, after `check` has accepted the row as
   * it is there (it throws to refuse). Returns the row before and after.
   */
  async update(
    id: string,
    edit: MediaEdit,
    check: (row: MediaRow) => void,
    at: number,
  ): Promise<{ before: MediaRow; after: MediaRow }> {
    return this.db.write(async (trx) => {
      const before = await lockedRow(trx, id);
      if (!before) throw new NotFoundError("media");
      check(before);
      const changes = Object.fromEntries(
        Object.entries(edit).filter(([field, value]) => value !== undefined && before[field as keyof MediaEdit] !== value),
      ) as MediaEdit;
      if (Object.keys(changes).length === 0) return { before, after: before };
      await trx.updateTable("media").set({ ...changes, updated_at: at }).where("id", "=", id).execute();
      return { before, after: { ...before, ...changes, updated_at: at } };
    });
  }

  /**
   * Removes the item and its variants and leaves a tombstone, in one transaction; returns
   * the row as it was when removed. Undefined when it was already gone (a concurrent delete
   * got there first): only the caller that removed the row gives the bytes back, so they
   * are given back once.
   */
  async deleteWithTombstone(id: string, at: number, quotaReleasedAt: number | null): Promise<MediaRow | undefined> {
    return this.db.write(async (trx) => {
      const row = await lockedRow(trx, id);
      if (!row) return undefined;
      await trx.deleteFrom("variants").where("media_id", "=", id).execute();
      await trx.deleteFrom("media").where("id", "=", id).execute();
      await trx.deleteFrom("media_tombstones").where("id", "=", id).execute();
      await trx
        .insertInto("media_tombstones")
        .values({ id, owner_id: row.owner_id, bytes: row.bytes, quota_released_at: quotaReleasedAt, deleted_at: at })
        .execute();
      return row;
    });
  }

  findTombstoneLatest(id: string): Promise<TombstoneRow | undefined> {
    return this.db.readLatest((db) => db.selectFrom("media_tombstones").selectAll().where("id", "=", id).executeTakeFirst());
  }

  /** Takes the duty of giving a tombstone's bytes back; true for exactly one caller. */
  async claimQuotaRelease(id: string, at: number): Promise<boolean> {
    const result = await this.db.write((trx) =>
      trx.updateTable("media_tombstones").set({ quota_released_at: at }).where("id", "=", id).where("quota_released_at", "is", null).executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /**
   * Removes up to `limit` tombstones of items deleted before `before` whose bytes have been given
   * back; returns how many went. The others still hold quota owed to their owner.
   */
  async deleteReleasedTombstones(before: number, limit: number): Promise<number> {
    return this.db.write(async (trx) => {
      const due = await trx
        .selectFrom("media_tombstones")
        .select("id")
        .where("deleted_at", "<", before)
        .where("quota_released_at", "is not", null)
        .limit(limit)
        .execute();
      if (due.length === 0) return 0;
      const result = await trx
        .deleteFrom("media_tombstones")
        .where("id", "in", due.map((row) => row.id))
        .where("deleted_at", "<", before)
        .where("quota_released_at", "is not", null)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }

  /** Hands the duty back after the release failed, so that a repeated DELETE tries again. */
  async unclaimQuotaRelease(id: string): Promise<void> {
    await this.db.write((trx) => trx.updateTable("media_tombstones").set({ quota_released_at: null }).where("id", "=", id).execute());
  }
}

/**
 * Reads a row for a change, holding it until the transaction ends, so that the change and
 * what is derived from it (which caches to clean) rest on the latest version, not on one a
 * concurrent edit is replacing. On MariaDB/MySQL the UPDATE (changing nothing) takes the
 * row lock, and, as the transaction's first statement, makes the read after it see the
 * latest committed version (kysely's SQLite dialect has no FOR UPDATE; SQLite runs one
 * write transaction at a time anyway).
 */
async function lockedRow(trx: Transaction<MediaDatabase>, id: string): Promise<MediaRow | undefined> {
  await trx
    .updateTable("media")
    .set((eb) => ({ updated_at: eb.ref("updated_at") }))
    .where("id", "=", id)
    .execute();
  return trx.selectFrom("media").selectAll().where("id", "=", id).executeTakeFirst();
}

/** (created_at, id) < position, written out: row-value comparison is not portable to every engine version. */
function olderThan(eb: ExpressionBuilder<MediaDatabase, "media">, position: ListPosition) {
  return eb.or([
    eb("created_at", "<", position.createdAt),
    eb.and([eb("created_at", "=", position.createdAt), eb("id", "<", position.id)]),
  ]);
}

/**
 * The page and its variants in one query (the page as a derived table, joined to its variants): one round trip
 * per page instead of two.
 */
async function pageWithVariants(db: Kysely<MediaDatabase>, page: SelectQueryBuilder<MediaDatabase, "media", MediaRow>): Promise<MediaPage> {
  const joined = await db
    .selectFrom(page.as("m"))
    .leftJoin("variants as v", "v.media_id", "m.id")
    .selectAll("m")
    .select([
      "v.name as variant_name",
      "v.object_key as variant_object_key",
      "v.mime as variant_mime",
      "v.width as variant_width",
      "v.height as variant_height",
      "v.bytes as variant_bytes",
      "v.duration_seconds as variant_duration_seconds",
      "v.created_at as variant_created_at",
    ])
    .orderBy("m.created_at", "desc")
    .orderBy("m.id", "desc")
    .orderBy("v.name")
    .execute();
  const rows: MediaRow[] = [];
  const variants = new Map<string, VariantRow[]>();
  for (const {
    variant_name: name,
    variant_object_key: objectKey,
    variant_mime: mime,
    variant_width: width,
    variant_height: height,
    variant_bytes: bytes,
    variant_duration_seconds: durationSeconds,
    variant_created_at: createdAt,
    ...row
  } of joined) {
    let ofRow = variants.get(row.id);
    if (!ofRow) {
      ofRow = [];
      variants.set(row.id, ofRow);
      rows.push(row);
    }
    if (name !== null && objectKey !== null && mime !== null && bytes !== null && createdAt !== null) {
      ofRow.push({ media_id: row.id, name, object_key: objectKey, mime, width, height, bytes, duration_seconds: durationSeconds, created_at: createdAt });
    }
  }
  return { rows, variants };
}

import { authorize, decide } from "../auth/policy";
import type { Actor, Resource } from "../auth/policy";
import { isUniqueViolation } from "../db/unique-violation";
import { ConflictError, NotFoundError, UnauthenticatedError, ValidationError } from "../errors";
import { mediaPrefix } from "../storage/object-keys";
import type { ObjectStorage } from "../storage/object-storage";
import { decodeCursor, decodePopularCursor, pageOf, popularPageOf } from "./cursor";
import type { Delivery } from "./delivery";
import type { MediaChange } from "./media-cache";
import { cleanDeclaredMime, cleanOriginalName, cleanText } from "./media-input";
import type { MediaEdit, MediaPage, MediaRepository } from "./media-repository";
import { toMediaJson } from "./media-view";
import type { MediaKind } from "../../config/settings";
import type { MediaJson, MediaRow, VariantRow } from "./media-view";

/** What the upload pipeline hands over once the original is stored. */
export interface NewMedia {
  readonly id: string;
  readonly ownerId: string;
  readonly kind: MediaKind;
  /** Sniffed from the content. */
  readonly mime: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly originalKey: string;
  /** The optional fields may also arrive as null (the validator lets null through for them). */
  readonly title?: string | null;
  /** What the client said; recorded, never trusted. */
  readonly originalName?: string | null;
  readonly declaredMime?: string | null;
}

export interface CreateOutcome {
  readonly row: MediaRow;
  /** The owner already had these bytes: `row` is that earlier item and nothing was inserted. */
  readonly duplicate: boolean;
  /** False when the same create was already done (a retried call): the item exists under the requested id. */
  readonly inserted: boolean;
}

export type ListScope = "mine" | "public";
/** newest: by creation, newest first. popular (public feed only): by all-time flushed views, most viewed first. */
export type ListSort = "newest" | "popular";

/** What the catalogue needs from the rest of the system, per request (the service binds them to the caller's context). */
export interface CatalogueHooks {
  /** Usernames by user id; ids without an account are left out. */
  usernames(userIds: readonly string[]): Promise<ReadonlyMap<string, string>>;
  /** Gives bytes back to the owner's storage quota. */
  releaseQuota(userId: string, bytes: number): Promise<void>;
  /** After a write: what changed, so that cached reads can be cleaned. */
  changed(changes: readonly MediaChange[]): Promise<void>;
}

export interface CatalogueOptions {
  readonly repository: MediaRepository;
  readonly storage: Pick<ObjectStorage, "deletePrefix">;
  readonly delivery: Delivery;
  readonly now?: () => number;
}

const DELETE_BATCH = 100;
const DELETE_CONCURRENCY = 4;

/**
 * The item as the policy judges it. Until it is ready, an item is shown to its owner (and admins)
 * only, whatever its visibility: to everyone else it is private, so it answers 404.
 */
function resourceOf(row: Pick<MediaRow, "owner_id" | "visibility" | "status">): Resource {
  return { kind: "media", ownerId: row.owner_id, visibility: row.status === "ready" ? row.visibility : "private" };
}

function changeOf(before: MediaRow | undefined, after: MediaRow | undefined): MediaChange {
  const row = (after ?? before) as MediaRow;
  return { id: row.id, ownerId: row.owner_id, publicBefore: before?.visibility === "public", publicAfter: after?.visibility === "public" };
}

/** Runs `work` over the items, at most `limit` at a time. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/**
 * The media catalogue: one row per upload, who may see and change it, how it is shown.
 * Knows nothing of Moleculer; authorization goes through lib/auth/policy.ts only.
 */
export class MediaCatalogue {
  private readonly repository: MediaRepository;
  private readonly now: () => number;

  constructor(private readonly options: CatalogueOptions) {
    this.repository = options.repository;
    this.now = options.now ?? Date.now;
  }

  /**
   * Records a stored upload. The owner's same bytes again give back the existing item
   * (duplicate: true) and insert nothing; the unique (owner_id, sha256) index settles two
   * such uploads finishing at once. Repeating a create that succeeded (same id, same
   * content) answers that item, not a duplicate, so a retrying caller never deletes the
   * object its own item points to.
   */
  async create(input: NewMedia, hooks: Pick<CatalogueHooks, "changed">): Promise<CreateOutcome> {
    // Deleting an item removes everything under its prefix: an original stored elsewhere would outlive it.
    if (!input.originalKey.startsWith(mediaPrefix(input.id))) {
      throw new ValidationError("The original must be stored under the item's own prefix.", { originalKey: `must start with ${mediaPrefix(input.id)}` });
    }
    const sha256 = input.sha256.toLowerCase();
    const sameContent = await this.repository.findByContentLatest(input.ownerId, sha256);
    if (sameContent) return { row: sameContent, duplicate: sameContent.id !== input.id, inserted: false };

    const at = this.now();
    const row: MediaRow = {
      id: input.id,
      owner_id: input.ownerId,
      kind: input.kind,
      title: cleanText(input.title),
      description: null,
      visibility: "private",
      status: "uploaded",
      reason: null,
      original_key: input.originalKey,
      bytes: input.bytes,
      mime: input.mime,
      sha256,
      width: null,
      height: null,
      duration_seconds: null,
      placeholder: null,
      declared_mime: cleanDeclaredMime(input.declaredMime),
      original_name: cleanOriginalName(input.originalName),
      attempts: 0,
      progress_stage: null,
      progress_percent: null,
      created_at: at,
      updated_at: at,
    };
    try {
      await this.repository.insert(row);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // Lost a race: the same content (or the same create) committed first.
      return this.afterUniqueViolation(input.id, input.ownerId, sha256, error);
    }
    await hooks.changed([changeOf(undefined, row)]);
    return { row, duplicate: false, inserted: true };
  }

  /** One item as `actor` may see it; someone else's private item is "not found". */
  async get(actor: Actor, id: string, hooks: Pick<CatalogueHooks, "usernames">): Promise<MediaJson> {
    const row = await this.repository.findById(id);
    if (!row) throw new NotFoundError("media");
    authorize(actor, "read", resourceOf(row), "media");
    return this.view(row, actor, hooks);
  }

  /** A page of the caller's own items, or of the public feed; newest first, or (public feed) most viewed first. */
  async list(
    actor: Actor,
    query: { scope: ListScope; sort?: ListSort; cursor?: string; limit: number },
    hooks: Pick<CatalogueHooks, "usernames">,
  ): Promise<{ items: MediaJson[]; nextCursor: string | null }> {
    authorize(actor, "read", { kind: "media-collection" }, "media");
    if (query.sort === "popular") return this.listPopular(query, hooks);
    const position = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    if (query.cursor !== undefined && !position) {
      throw new ValidationError("The cursor is not one this list gave out.", { cursor: "is not a cursor from this list" });
    }
    let fetched: MediaPage;
    if (query.scope === "mine") {
      if (!actor) throw new UnauthenticatedError("Sign in to see your own media.");
      fetched = await this.repository.listByOwner(actor.id, position, query.limit + 1);
    } else {
      fetched = await this.repository.listPublic(position, query.limit + 1);
    }
    const page = pageOf(fetched.rows, query.limit);
    // The public feed is shown as to anyone, whoever asks (no owner's originalUrl): one answer, cached once for every viewer.
    const viewer: Actor = query.scope === "public" ? undefined : actor;
    // The queries already select only what the caller may read; the policy has the last word all the same.
    const readable = page.rows.filter((row) => decide(viewer, "read", resourceOf(row)) === "allow");
    return { items: await this.views(readable, viewer, hooks, fetched.variants), nextCursor: page.next };
  }

  /**
   * The public feed by popularity: the items' flushed all-time view counts, most viewed first, ties
   * by id. Shown as to anyone, like the newest-first feed (no counts in it).
   */
  private async listPopular(
    query: { scope: ListScope; cursor?: string; limit: number },
    hooks: Pick<CatalogueHooks, "usernames">,
  ): Promise<{ items: MediaJson[]; nextCursor: string | null }> {
    if (query.scope !== "public") {
      throw new ValidationError("Sorting by popularity is for the public feed (scope=public).", { sort: "popular needs scope=public" });
    }
    const position = query.cursor === undefined ? undefined : decodePopularCursor(query.cursor);
    if (query.cursor !== undefined && !position) {
      throw new ValidationError("The cursor is not one this list gave out.", { cursor: "is not a cursor from this list" });
    }
    const page = popularPageOf(await this.repository.listPublicPopular(position, query.limit + 1), query.limit);
    const readable = page.rows.filter((row) => decide(undefined, "read", resourceOf(row)) === "allow");
    return { items: await this.views(readable, undefined, hooks), nextCursor: page.next };
  }

  /** Changes title, description or visibility (owner or admin); fields left out stay as they are. */
  async update(actor: Actor, id: string, edit: MediaEdit, hooks: Pick<CatalogueHooks, "usernames" | "changed">): Promise<MediaJson> {
    // The validator lets null through for an optional field; an item always has a visibility.
    if ((edit.visibility as unknown) === null) {
      throw new ValidationError("Some fields are missing or invalid.", { visibility: "must be private, unlisted or public" });
    }
    const cleaned: MediaEdit = {
      ...(edit.title !== undefined ? { title: cleanText(edit.title) } : {}),
      ...(edit.description !== undefined ? { description: cleanText(edit.description) } : {}),
      ...(edit.visibility !== undefined ? { visibility: edit.visibility } : {}),
    };
    const { before, after } = await this.repository.update(id, cleaned, (row) => authorize(actor, "update", resourceOf(row), "media"), this.now());
    if (after !== before) await hooks.changed([changeOf(before, after)]);
    return this.view(after, actor, hooks);
  }

  /**
   * Deletes the item: its objects, its rows (media and variants), and gives its bytes back
   * to the owner's quota. Idempotent: repeating it (owner or admin) succeeds, and a delete
   * interrupted half-way finishes when repeated.
   */
  async delete(actor: Actor, id: string, hooks: Pick<CatalogueHooks, "releaseQuota" | "changed">): Promise<void> {
    const row = await this.repository.findByIdLatest(id);
    if (!row) {
      const tombstone = await this.repository.findTombstoneLatest(id);
      if (!tombstone) throw new NotFoundError("media");
      // A deleted item is readable by nobody: judged as private, only its owner (and admins) learn it was there.
      authorize(actor, "delete", { kind: "media", ownerId: tombstone.owner_id, visibility: "private" }, "media");
      await this.giveBackQuota(tombstone.id, tombstone.owner_id, Number(tombstone.bytes), hooks);
      return;
    }
    authorize(actor, "delete", resourceOf(row), "media");
    // Objects first: should this fail, the row is still there and repeating the DELETE finishes the job.
    await this.options.storage.deletePrefix(mediaPrefix(row.id));
    const removed = await this.repository.deleteWithTombstone(row.id, this.now(), null);
    // Not removed: a concurrent delete removed the row, and gives the bytes back itself.
    if (!removed) return;
    await hooks.changed([changeOf(removed, undefined)]);
    await this.giveBackQuota(removed.id, removed.owner_id, Number(removed.bytes), hooks);
  }

  /** Deletes every item of an account that no longer exists (no quota to give back); returns how many. */
  async deleteAllOf(ownerId: string, hooks: Pick<CatalogueHooks, "changed">): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.repository.someOfOwnerLatest(ownerId, DELETE_BATCH);
      if (rows.length === 0) return total;
      const changes: MediaChange[] = [];
      await forEachLimited(rows, DELETE_CONCURRENCY, async (row) => {
        await this.options.storage.deletePrefix(mediaPrefix(row.id));
        const at = this.now();
        const removed = await this.repository.deleteWithTombstone(row.id, at, at);
        if (removed) changes.push(changeOf(removed, undefined));
      });
      total += changes.length;
      await hooks.changed(changes);
    }
  }

  /** An item as `actor` sees it (the original's URL only for its owner). */
  async view(row: MediaRow, actor: Actor, hooks: Pick<CatalogueHooks, "usernames">): Promise<MediaJson> {
    const [json] = await this.views([row], actor, hooks);
    return json as MediaJson;
  }

  /** `knownVariants`: the variants read with the rows, when they were. */
  private async views(
    rows: readonly MediaRow[],
    actor: Actor,
    hooks: Pick<CatalogueHooks, "usernames">,
    knownVariants?: Map<string, VariantRow[]>,
  ): Promise<MediaJson[]> {
    if (rows.length === 0) return [];
    const { delivery } = this.options;
    const [variants, usernames] = await Promise.all([
      knownVariants ?? this.repository.variantsOf(rows.map((row) => row.id)),
      // One lookup per distinct owner, however many of their items are on the page.
      hooks.usernames([...new Set(rows.map((row) => row.owner_id))]),
    ]);
    return Promise.all(
      rows.map(async (row) => {
        const [withUrls, originalUrl] = await Promise.all([
          Promise.all((variants.get(row.id) ?? []).map(async (variant) => ({ ...variant, url: await delivery.objectUrl(variant.object_key, row.visibility) }))),
          decide(actor, "download-original", resourceOf(row)) === "allow" ? delivery.originalUrl(row) : Promise.resolve(null),
        ]);
        const json = toMediaJson(row, { variants: withUrls, originalUrl, username: usernames.get(row.owner_id) ?? null });
        // View counts are the owner's to see: never in an answer to anyone else (nor in the shared public feed).
        return actor?.id === row.owner_id ? { ...json, views: Number(row.views ?? 0), uniqueViewers: Number(row.unique_viewers ?? 0) } : json;
      }),
    );
  }

  /** What a refused insert collided with: the owner's same content, or an item that already has the id. */
  private async afterUniqueViolation(id: string, ownerId: string, sha256: string, error: unknown): Promise<CreateOutcome> {
    const sameContent = await this.repository.findByContentLatest(ownerId, sha256);
    if (sameContent) return { row: sameContent, duplicate: sameContent.id !== id, inserted: false };
    if (await this.repository.findByIdLatest(id)) throw new ConflictError("A media item with this id already exists.", { id: "is taken" });
    throw error;
  }

  /** Gives a deleted item's bytes back once: the tombstone records that it was done, or takes it back if it failed. */
  private async giveBackQuota(id: string, ownerId: string, bytes: number, hooks: Pick<CatalogueHooks, "releaseQuota">): Promise<void> {
    if (!(await this.repository.claimQuotaRelease(id, this.now()))) return;
    try {
      await hooks.releaseQuota(ownerId, bytes);
    } catch (error) {
      await this.repository.unclaimQuotaRelease(id).catch(() => undefined);
      throw error;
    }
  }
}

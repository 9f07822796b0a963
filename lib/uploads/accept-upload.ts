import { Readable } from "node:stream";
import { nanoid } from "nanoid";
import type { NewMedia } from "../media/catalogue";
import type { ObjectStorage } from "../storage/object-storage";
import { ingest, ingestStaged } from "./ingest";
import type { IngestLimits, StagedUpload } from "./ingest";


/**
 * The catalogue and quota as the upload path needs them (broker calls, in the gateway).
 * Quota is held by reservations, which expire with their upload, so that a node dying
 * mid-upload cannot keep a user's quota forever.
 */
export interface UploadCatalogue<MediaJson> {
  /** Holds bytes of the owner's quota; throws 413 quota_exceeded when they do not fit. */
  reserveQuota(reservation: QuotaReservation): Promise<void>;
  /** Turns a reservation into used bytes, adjusted to the bytes actually stored (413 quota_exceeded if more no longer fit). */
  commitReservation(reservationId: string, bytes: number): Promise<void>;
  /** Gives a reservation back; idempotent. */
  releaseReservation(reservationId: string): Promise<void>;
  /** Gives used bytes back (a duplicate that is not kept). */
  releaseQuota(userId: string, bytes: number): Promise<void>;
  createMedia(media: NewMedia): Promise<{ media: MediaJson; duplicate: boolean }>;
}

export interface QuotaReservation {
  readonly reservationId: string;
  readonly userId: string;
  readonly bytes: number;
  readonly expiresAt: number;
}

export interface UploadRequest {
  readonly ownerId: string;
  /** The reservation holding this upload's quota. */
  readonly reservationId: string;
  readonly title?: string;
  readonly originalName?: string;
  readonly declaredMime?: string;
}

export interface UploadDependencies<MediaJson> {
  readonly storage: ObjectStorage;
  readonly catalogue: UploadCatalogue<MediaJson>;
  readonly limits: IngestLimits;
}

/**
 * Turns an upload's bytes (a stream, or a finished resumable upload) into a catalogued media item
 * (status uploaded), or refuses it leaving nothing behind: no object, no row, no quota held. The same
 * bytes uploaded again by the same owner give back the existing item (duplicate: true) and are not kept.
 */
export async function acceptUpload<MediaJson>(
  source: Readable | StagedUpload,
  request: UploadRequest,
  { storage, catalogue, limits }: UploadDependencies<MediaJson>,
): Promise<{ media: MediaJson; duplicate: boolean }> {
  const mediaId = nanoid();
  let storedKey: string | undefined;
  let committedBytes: number | undefined;
  try {
    const ingested =
      source instanceof Readable ? await ingest(source, mediaId, storage, limits) : await ingestStaged(source, mediaId, storage, limits);
    storedKey = ingested.key;
    await catalogue.commitReservation(request.reservationId, ingested.bytes);
    committedBytes = ingested.bytes;
    const created = await catalogue.createMedia({
      id: mediaId,
      ownerId: request.ownerId,
      kind: ingested.type.kind,
      mime: ingested.type.mime,
      bytes: ingested.bytes,
      sha256: ingested.sha256,
      originalKey: ingested.key,
      title: request.title,
      originalName: request.originalName,
      declaredMime: request.declaredMime,
    });
    if (created.duplicate) {
      await storage.delete(ingested.key);
      await catalogue.releaseQuota(request.ownerId, ingested.bytes);
    }
    return created;
  } catch (error) {
    if (storedKey) await storage.delete(storedKey).catch(() => undefined);
    if (committedBytes === undefined) await catalogue.releaseReservation(request.reservationId).catch(() => undefined);
    else await catalogue.releaseQuota(request.ownerId, committedBytes).catch(() => undefined);
    throw error;
  }
}

import type http from "node:http";
import { EVENTS, MemoryLocker, Server } from "@tus/server";
import type { Locker, Upload } from "@tus/utils";
import type { Redis } from "ioredis";
import { nanoid } from "nanoid";
import type { MediaKind, StorageSettings, UploadSettings } from "../../config/settings";
import { AppError, BadRequestError, NotFoundError, UnauthenticatedError } from "../errors";
import { toErrorResponse } from "../http/error-body";
import type { GatewayError } from "../http/error-body";
import { declaredKind } from "./allowed-types";
import { tooLarge } from "./ingest";
import type { StagedUpload } from "./ingest";
import { RedisLocker } from "./redis-locker";
import { createUploadStore } from "./tus-stores";
import type { UploadStore } from "./tus-stores";

export interface UploadOwner {
  readonly id: string;
}

export interface TusUploadHooks {
  /** The signed-in user a request comes from (undefined: anonymous). */
  ownerOf(req: http.IncomingMessage): UploadOwner | undefined;
  /** Rate limit and quota: throws AppError to refuse the upload before a byte is stored. */
  beforeCreate(owner: UploadOwner, reservation: { reservationId: string; bytes: number; expiresAt: number }): Promise<void>;
  /** Turns the finished upload into a media item; throws AppError to refuse it. */
  accept(owner: UploadOwner, upload: Upload, content: StagedUpload): Promise<{ mediaId: string }>;
  /** The upload was cancelled or refused: give its reservation back. */
  release(reservationId: string): Promise<void>;
  /** Bytes received so far, reported while an upload streams in (throttled). */
  received?(ownerId: string, progress: { uploadId: string; offset: number; size: number | undefined }): void;
  /** Remembers what an upload became (or why it was refused), for GET /api/uploads/<id>/media. */
  recordOutcome(uploadId: string, ownerId: string, outcome: UploadOutcome): Promise<void>;
}

export type UploadOutcome = { readonly mediaId: string } | { readonly error: { status: number; code: string; message: string } };

export interface TusUploadsOptions {
  readonly path: string;
  readonly uploads: UploadSettings;
  readonly storage: StorageSettings;
  /** Cluster mode: upload state and locks shared through Redis. */
  readonly redis: Redis | undefined;
  readonly hooks: TusUploadHooks;
}

/** A tus refusal: the protocol library sends status_code and body as they are. Errors from broker calls arrive as Moleculer errors. */
function tusError(error: unknown): { status_code: number; body: string } {
  const { status, body } =
    error instanceof AppError
      ? { status: error.status, body: { error: { code: error.code, message: error.message, fields: error.fields ?? {} } } }
      : toErrorResponse((error ?? {}) as GatewayError);
  return { status_code: status, body: JSON.stringify(body) };
}

function metadataOf(upload: Upload): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(upload.metadata ?? {})) if (typeof value === "string") metadata[key] = value;
  return metadata;
}

/**
 * Resumable uploads (tus 1.0: creation, creation-with-upload, termination, expiration).
 * Embedded: files under the data directory and an in-process lock. Cluster: upload state
 * in S3 and locks in Redis, so an upload begun through one gateway node can be finished
 * through another.
 */
export class TusUploads {
  readonly server: Server;
  private readonly datastore: UploadStore;
  private readonly locker: Locker;

  constructor(private readonly options: TusUploadsOptions) {
    const { storage, redis } = options;
    this.datastore = createUploadStore(storage, options.uploads.dir, redis, options.uploads.expirySeconds * 1000);
    this.locker = redis ? new RedisLocker(redis) : new MemoryLocker();
    const largest = Math.max(...Object.values(options.uploads.maxBytes));

    this.server = new Server({
      path: options.path,
      datastore: this.datastore,
      locker: this.locker,
      relativeLocation: true,
      // How often bytes received are reported to the uploader while a PATCH streams.
      postReceiveInterval: 500,
      maxSize: largest,
      // Upload ids are ours, never derived from the client's file name.
      namingFunction: () => `u${nanoid()}`,
      onIncomingRequest: (req, _res, uploadId) => this.authorize(req, uploadId),
      onUploadCreate: (req, res, upload) => this.create(req, res, upload),
      onUploadFinish: (req, res, upload) => this.finish(req, res, upload),
      onResponseError: (_req, res, error) => {
        if (error instanceof AppError || !("status_code" in error)) {
          res.setHeader("Content-Type", "application/json; charset=utf-8");
          return tusError(error);
        }
        return undefined;
      },
    });
    this.server.on(EVENTS.POST_RECEIVE_V2, (_req: http.IncomingMessage, upload: Upload) => {
      const ownerId = metadataOf(upload).ownerId;
      if (ownerId) this.options.hooks.received?.(ownerId, { uploadId: upload.id, offset: upload.offset, size: upload.size });
    });
    this.server.on(EVENTS.POST_TERMINATE, (req: http.IncomingMessage) => {
      const upload = (req as RequestWithUpload).shoalUpload;
      const reservationId = upload && metadataOf(upload).reservationId;
      if (reservationId) void this.options.hooks.release(reservationId).catch(() => undefined);
    });
  }

  handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    void this.server.handle(req, res);
  }

  /** Drops expired unfinished uploads' data (their quota reservations expire on their own). */
  sweepExpired(): Promise<number> {
    return this.datastore.deleteExpired();
  }

  close(): void {
    if (this.locker instanceof RedisLocker) this.locker.close();
  }

  /** Only the signed-in owner may touch an upload; anyone else gets 404 (not 403), so ids do not leak. */
  private async authorize(req: http.IncomingMessage, uploadId: string): Promise<void> {
    const owner = this.options.hooks.ownerOf(req);
    if (!owner) throw tusError(new UnauthenticatedError("Sign in to upload."));
    if (req.method === "POST" || req.method === "OPTIONS") return;
    const upload = await this.datastore.getUpload(uploadId).catch(() => undefined);
    if (!upload || metadataOf(upload).ownerId !== owner.id) throw tusError(new NotFoundError("upload"));
    (req as RequestWithUpload).shoalUpload = upload;
  }

  private async create(req: http.IncomingMessage, res: http.ServerResponse, upload: Upload) {
    const owner = this.options.hooks.ownerOf(req);
    if (!owner) throw tusError(new UnauthenticatedError("Sign in to upload."));
    const size = upload.size;
    if (size === undefined) throw tusError(new BadRequestError("Upload-Length is required.", "length_required"));
    if (size === 0) throw tusError(new BadRequestError("The file is empty.", "empty_upload"));
    const metadata = metadataOf(upload);
    const kind: MediaKind | undefined = declaredKind(metadata.filetype);
    const limit = kind ? this.options.uploads.maxBytes[kind] : Math.max(...Object.values(this.options.uploads.maxBytes));
    if (size > limit) throw tusError(tooLarge(kind, limit));
    const reservationId = `tus:${upload.id}`;
    try {
      await this.options.hooks.beforeCreate(owner, {
        reservationId,
        bytes: size,
        expiresAt: Date.now() + this.options.uploads.expirySeconds * 1000,
      });
    } catch (error) {
      if (error instanceof AppError && error.retryAfterSeconds) res.setHeader("Retry-After", String(error.retryAfterSeconds));
      throw tusError(error);
    }
    // The owner and reservation come from the server, whatever the client sent.
    return { res, metadata: { ...metadata, ownerId: owner.id, reservationId } };
  }

  private async finish(req: http.IncomingMessage, res: http.ServerResponse, upload: Upload) {
    const owner = this.options.hooks.ownerOf(req);
    const metadata = metadataOf(upload);
    try {
      if (!owner || metadata.ownerId !== owner.id) throw new NotFoundError("upload");
      const bytes = upload.size ?? upload.offset;
      const { mediaId } = await this.options.hooks.accept(owner, upload, {
        staged: this.datastore.staged(upload.id),
        bytes,
        sha256: await this.datastore.sha256(upload.id, bytes),
        open: async () => this.datastore.read(upload.id),
      });
      await this.options.hooks.recordOutcome(upload.id, owner.id, { mediaId });
      await this.datastore.remove(upload.id).catch(() => undefined);
      return { res, headers: { "Shoal-Media-Id": mediaId } };
    } catch (error) {
      const refusal = tusError(error);
      const { error: body } = JSON.parse(refusal.body) as { error: { code: string; message: string } };
      if (metadata.ownerId) {
        await this.options.hooks.recordOutcome(upload.id, metadata.ownerId, {
          error: { status: refusal.status_code, code: body.code, message: body.message },
        });
      }
      await this.datastore.remove(upload.id).catch(() => undefined);
      if (metadata.reservationId) await this.options.hooks.release(metadata.reservationId).catch(() => undefined);
      res.setHeader("Content-Type", "application/json; charset=utf-8");
      throw refusal;
    }
  }
}

type RequestWithUpload = http.IncomingMessage & { shoalUpload?: Upload };

import type http from "node:http";
import { EVENTS, MemoryLocker, Server } from "@tus/server";
import type { ServerOptions } from "@tus/server";
import { ERRORS, TUS_VERSION } from "@tus/utils";
import type { CancellationContext, DataStore, Locker, Upload } from "@tus/utils";
import type { Redis } from "ioredis";
import type { MediaKind, StorageSettings, UploadSettings } from "../../config/settings";
import { AppError, BadRequestError, NotFoundError, UnauthenticatedError } from "../errors";
import type { CheckResult } from "../health";
import type { StorageOutage } from "../storage/storage-outage";
import { toErrorResponse } from "../http/error-body";
import type { ErrorBody, GatewayError } from "../http/error-body";
import { sendJson } from "../http/front-door";
import { declaredKind } from "./allowed-types";
import { tooLarge } from "./ingest";
import type { StagedUpload } from "./ingest";
import { RedisLocker } from "./redis-locker";
import { createUploadStore } from "./tus-stores";
import type { UploadStore } from "./tus-stores";
import { tusRefusal } from "./tus-refusals";
import type { Refusal } from "./tus-refusals";
import { newUploadId, uploadIdInUrl } from "./upload-id";
import { checkedUploadMetadata } from "./upload-metadata";

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

/** Where the upload path reports what went wrong on our side (a Moleculer logger fits). */
export interface UploadLogger {
  error(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
}

export const SILENT_LOGGER: UploadLogger = { error: () => undefined, warn: () => undefined, info: () => undefined };

export interface TusUploadsOptions {
  readonly path: string;
  readonly uploads: UploadSettings;
  readonly storage: StorageSettings;
  /** The bucket's outages, as the node's object storage knows them (cluster mode). */
  readonly storageOutage?: StorageOutage;
  /** Cluster mode: upload state and locks shared through Redis. */
  readonly redis: Redis | undefined;
  readonly hooks: TusUploadHooks;
  /** Unexpected failures are logged here, at error level with their stack (default: nowhere). */
  readonly log?: UploadLogger;
  /** The id the gateway gave a request, named in those logs. */
  readonly requestIdOf?: (req: http.IncomingMessage) => string | undefined;
  /** Where uploads are kept (default: files under uploads.dir when embedded, the bucket in cluster mode). */
  readonly store?: UploadStore;
}

const JSON_TYPE = "application/json; charset=utf-8";
const INTERNAL: Refusal = toRefusal(toErrorResponse({}));
const METHOD_OVERRIDE_REFUSED: Refusal = {
  status: 400,
  code: "method_override_refused",
  message: "X-HTTP-Method-Override is not supported: send the request with its own method.",
};

function toRefusal({ status, body }: ReturnType<typeof toErrorResponse>): Refusal {
  return { status, ...body.error };
}

/** An answer already in the API's shape (and logged, when the failure was ours): @tus/server sends it as it is. */
class TusAnswer {
  constructor(
    readonly status_code: number,
    readonly body: string,
  ) {}

  static of(refusal: Refusal): TusAnswer {
    return new TusAnswer(refusal.status, JSON.stringify(errorBody(refusal)));
  }
}

function errorBody({ code, message, fields }: Refusal): ErrorBody {
  return { error: { code, message, fields: fields ?? {} } };
}

/** One of @tus/server's own refusals (its ERRORS): plain objects with a status and a text body. */
function isTusError(error: unknown): error is { status_code: number; body: string } {
  return typeof error === "object" && error !== null && !(error instanceof Error) && "status_code" in error && "body" in error;
}

function isUploadGone(error: unknown): boolean {
  return isTusError(error) && (error.body === ERRORS.FILE_NOT_FOUND.body || error.body === ERRORS.FILE_NO_LONGER_EXISTS.body);
}

/**
 * @tus/server, with the refusals it writes itself (a missing Tus-Resumable, malformed headers), which never
 * reach onResponseError, in the API's JSON shape too.
 */
class JsonAnswerServer extends Server {
  constructor(
    options: ServerOptions & { datastore: DataStore },
    private readonly answerPlainText: (req: http.IncomingMessage, status: number, body: string) => TusAnswer,
  ) {
    super(options);
  }

  override write(
    context: CancellationContext,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    status: number,
    body = "",
    headers: Record<string, string | number> = {},
  ): http.ServerResponse {
    if (status < 400) return super.write(context, req, res, status, body, headers);
    // Bodies from onResponseError are ours already; tus's own are plain text.
    const answer = body.startsWith("{") ? new TusAnswer(status, body) : this.answerPlainText(req, status, body);
    const errorHeaders: Record<string, string | number> = { ...headers, "Content-Type": JSON_TYPE, "Cache-Control": "no-store" };
    if (answer.status_code === 412) errorHeaders["Tus-Version"] = TUS_VERSION.join(",");
    return super.write(context, req, res, answer.status_code, answer.body, errorHeaders);
  }
}

/**
 * @tus/server sets CORS headers of its own on every answer, allowing any origin. The gateway has already
 * applied CORS_ORIGINS to the request (moleculer-web's route option): those are the only CORS headers sent.
 */
function withoutTusCorsHeaders(res: http.ServerResponse): void {
  const setHeader = res.setHeader.bind(res);
  res.setHeader = ((name: string, value: number | string | readonly string[]) =>
    name.toLowerCase().startsWith("access-control-") ? res : setHeader(name, value)) as typeof res.setHeader;
}

function metadataOf(upload: Upload): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(upload.metadata ?? {})) if (typeof value === "string") metadata[key] = value;
  return metadata;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(",") : value;
}

/**
 * Resumable uploads (tus 1.0: creation, creation-with-upload, termination, expiration).
 * Embedded: files under the data directory and an in-process lock. Cluster: upload state
 * in S3 and locks in Redis, so an upload begun through one gateway node can be finished
 * through another. Every refusal is the API's JSON error shape; upload ids are checked
 * before they reach the store.
 */
export class TusUploads {
  readonly server: Server;
  private readonly datastore: UploadStore;
  private readonly locker: Locker;
  private readonly log: UploadLogger;
  private readonly largest: number;

  constructor(private readonly options: TusUploadsOptions) {
    const { storage, redis } = options;
    this.datastore = options.store ?? createUploadStore(storage, options.uploads.dir, redis, options.uploads.expirySeconds * 1000, options.storageOutage);
    this.locker = redis ? new RedisLocker(redis) : new MemoryLocker();
    this.log = options.log ?? SILENT_LOGGER;
    this.largest = Math.max(...Object.values(options.uploads.maxBytes));

    this.server = new JsonAnswerServer(
      {
        path: options.path,
        datastore: this.datastore,
        locker: this.locker,
        relativeLocation: true,
        // How often bytes received are reported to the uploader while a PATCH streams.
        postReceiveInterval: 500,
        maxSize: this.largest,
        // Upload ids are ours, never derived from the client's file name.
        namingFunction: () => newUploadId(),
        // An id becomes a file name or an object key: anything but the shape we make answers 404 before the store sees it.
        getFileIdFromRequest: (req) => uploadIdInUrl(req.url, options.path),
        onIncomingRequest: (req, _res, uploadId) => this.authorize(req, uploadId),
        onUploadCreate: (req, res, upload) => this.create(req, res, upload),
        onUploadFinish: (req, res, upload) => this.finish(req, res, upload),
        onResponseError: (req, res, error) => this.answerFor(req, res, error),
      },
      (req, status, body) => this.answerForTusText(req, status, body),
    );
    this.server.on(EVENTS.POST_RECEIVE_V2, (_req: http.IncomingMessage, upload: Upload) => {
      const ownerId = metadataOf(upload).ownerId;
      if (ownerId) this.options.hooks.received?.(ownerId, { uploadId: upload.id, offset: upload.offset, size: upload.size });
    });
    // From here the upload exists and carries its reservation (released with it on termination, expiry or refusal).
    this.server.on(EVENTS.POST_CREATE, (req: http.IncomingMessage) => {
      delete (req as RequestWithUpload).reservationWithoutUpload;
    });
    this.server.on(EVENTS.POST_TERMINATE, (req: http.IncomingMessage) => {
      const upload = (req as RequestWithUpload).shoalUpload;
      const reservationId = upload && metadataOf(upload).reservationId;
      if (reservationId) void this.options.hooks.release(reservationId).catch(() => undefined);
    });
  }

  handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    // @tus/server would apply the override after the gateway judged the request by its own method.
    if (req.headers["x-http-method-override"] !== undefined) {
      res.setHeader("Cache-Control", "no-store");
      sendJson(res, 400, errorBody(METHOD_OVERRIDE_REFUSED));
      return;
    }
    withoutTusCorsHeaders(res);
    this.server.handle(req, res).catch((error: unknown) => {
      this.releaseReservationWithoutUpload(req);
      this.reportFailure(req, error);
      if (res.headersSent) res.destroy();
      else sendJson(res, INTERNAL.status, errorBody(INTERNAL));
    });
  }

  /** Whether the store answers what resumable uploads need of it; undefined when there is nothing to check (files on disk). */
  checkStore(): Promise<CheckResult> | undefined {
    return this.datastore.checkResumable?.();
  }

  /** Drops expired unfinished uploads' data (their quota reservations expire on their own). */
  sweepExpired(): Promise<number> {
    return this.datastore.deleteExpired();
  }

  close(): void {
    if (this.locker instanceof RedisLocker) this.locker.close();
  }

  /** The answer to any failure on the tus path, in the API's shape; what is ours (5xx) is logged with the request id. */
  private answerFor(req: http.IncomingMessage, res: http.ServerResponse, error: unknown): TusAnswer {
    this.releaseReservationWithoutUpload(req);
    if (error instanceof TusAnswer) return error;
    const refusal = this.refusalFor(error);
    if (refusal.status >= 500) this.reportFailure(req, error);
    const retryAfter =
      error instanceof AppError ? error.retryAfterSeconds : (error as { data?: { retryAfterSeconds?: number } } | undefined)?.data?.retryAfterSeconds;
    if (refusal.status === 429 || refusal.status === 503) res.setHeader("Retry-After", String(retryAfter ?? 5));
    return TusAnswer.of(refusal);
  }

  /** A creation that failed after its quota was reserved (the store could not begin the upload): nothing will hold that quota. */
  private releaseReservationWithoutUpload(req: http.IncomingMessage): void {
    const request = req as RequestWithUpload;
    const reservationId = request.reservationWithoutUpload;
    if (reservationId === undefined) return;
    delete request.reservationWithoutUpload;
    void this.options.hooks.release(reservationId).catch((error: unknown) => this.reportFailure(req, error));
  }

  private refusalFor(error: unknown): Refusal {
    if (error instanceof AppError) return { status: error.status, code: error.code, message: error.message, fields: error.fields };
    if (isTusError(error)) {
      if (error.body === ERRORS.ERR_MAX_SIZE_EXCEEDED.body) return this.refusalFor(tooLarge(undefined, this.largest));
      return tusRefusal(error.status_code, error.body) ?? INTERNAL;
    }
    // Errors from broker calls arrive as Moleculer errors; anything else becomes the generic 500.
    return toRefusal(toErrorResponse((error ?? {}) as GatewayError));
  }

  private answerForTusText(req: http.IncomingMessage, status: number, body: string): TusAnswer {
    const refusal = tusRefusal(status, body);
    if (refusal) return TusAnswer.of(refusal);
    this.reportFailure(req, new Error(`@tus/server answered ${status}: ${body.trim()}`));
    return TusAnswer.of(INTERNAL);
  }

  private reportFailure(req: http.IncomingMessage, error: unknown): void {
    const requestId = this.options.requestIdOf?.(req) ?? "unknown";
    this.log.error(`${req.method} ${req.url} failed (request ${requestId}):`, error);
  }

  /**
   * The outcome is a convenience for a client that lost the answer (GET /api/uploads/<id>/media): failing to keep it
   * (its store, Redis, out of reach) must not undo an item that exists, nor turn the upload's answer into an error.
   */
  private async recordOutcome(req: http.IncomingMessage, uploadId: string, ownerId: string, outcome: UploadOutcome): Promise<void> {
    await this.options.hooks.recordOutcome(uploadId, ownerId, outcome).catch((error: unknown) => {
      const requestId = this.options.requestIdOf?.(req) ?? "unknown";
      this.log.warn(`upload ${uploadId}: its outcome was not kept (request ${requestId}): ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  /** Only the signed-in owner may touch an upload; anyone else gets 404 (not 403), so ids do not leak. */
  private async authorize(req: http.IncomingMessage, uploadId: string): Promise<void> {
    const owner = this.options.hooks.ownerOf(req);
    if (!owner) throw new UnauthenticatedError("Sign in to upload.");
    if (req.method === "POST" || req.method === "OPTIONS") return;
    // A store that cannot answer is a failure of ours (500, logged), not a missing upload: a client would start over.
    const upload = await this.datastore.getUpload(uploadId).catch((error: unknown) => {
      if (isUploadGone(error)) return undefined;
      throw error;
    });
    if (!upload || metadataOf(upload).ownerId !== owner.id) throw new NotFoundError("upload");
    (req as RequestWithUpload).shoalUpload = upload;
  }

  private async create(req: http.IncomingMessage, res: http.ServerResponse, upload: Upload) {
    const owner = this.options.hooks.ownerOf(req);
    if (!owner) throw new UnauthenticatedError("Sign in to upload.");
    // Checked from the header as sent: @tus/server's own decoding replaces invalid UTF-8 without a word.
    const metadata = checkedUploadMetadata(headerValue(req.headers["upload-metadata"]));
    const size = upload.size;
    if (size === undefined) throw new BadRequestError("Upload-Length is required.", "length_required");
    if (size === 0) throw new BadRequestError("The file is empty.", "empty_upload");
    const kind: MediaKind | undefined = declaredKind(metadata.filetype);
    const limit = kind ? this.options.uploads.maxBytes[kind] : this.largest;
    if (size > limit) throw tooLarge(kind, limit);
    const reservationId = `tus:${upload.id}`;
    await this.options.hooks.beforeCreate(owner, {
      reservationId,
      bytes: size,
      expiresAt: Date.now() + this.options.uploads.expirySeconds * 1000,
    });
    (req as RequestWithUpload).reservationWithoutUpload = reservationId;
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
      await this.recordOutcome(req, upload.id, owner.id, { mediaId });
      await this.datastore.remove(upload.id).catch(() => undefined);
      return { res, headers: { "Shoal-Media-Id": mediaId } };
    } catch (error) {
      const answer = this.answerFor(req, res, error);
      const { error: body } = JSON.parse(answer.body) as { error: { code: string; message: string } };
      if (metadata.ownerId) {
        await this.recordOutcome(req, upload.id, metadata.ownerId, {
          error: { status: answer.status_code, code: body.code, message: body.message },
        });
      }
      await this.datastore.remove(upload.id).catch(() => undefined);
      if (metadata.reservationId) await this.options.hooks.release(metadata.reservationId).catch(() => undefined);
      throw answer;
    }
  }
}

type RequestWithUpload = http.IncomingMessage & { shoalUpload?: Upload; reservationWithoutUpload?: string };

import type http from "node:http";
import type { Redis } from "ioredis";
import { nanoid } from "nanoid";
import type { StorageSettings, UploadSettings } from "../../config/settings";
import { AppError, NotFoundError, UnauthenticatedError } from "../errors";
import type { ExpiringStore } from "../expiring-store";
import type { CheckResult, HealthCheck } from "../health";
import type { PeriodicTask } from "../scheduling/periodic-task";
import type { PeriodicTasks } from "../scheduling/periodic-tasks";
import type { ObjectStorage } from "../storage/object-storage";
import { acceptUpload } from "./accept-upload";
import type { UploadCatalogue } from "./accept-upload";
import { tooLarge } from "./ingest";
import { receiveMultipartFile } from "./multipart";
import { SILENT_LOGGER, TusUploads } from "./tus-uploads";
import type { UploadLogger, UploadOutcome, UploadOwner } from "./tus-uploads";

export interface UploadGatewayOptions {
  readonly uploads: UploadSettings;
  readonly storageSettings: StorageSettings;
  readonly storage: ObjectStorage;
  /** Cluster mode: tus upload state and locks shared through Redis. */
  readonly redis: Redis | undefined;
  readonly catalogue: UploadCatalogue<unknown>;
  /** Refuses (429) an owner's upload past their hourly allowance. */
  readonly consumeUpload: (ownerId: string) => Promise<void>;
  /** What each finished tus upload became, kept for GET /api/uploads/<id>/media. */
  readonly outcomes: ExpiringStore;
  /** The signed-in user a request comes from, as the gateway resolved it. */
  readonly ownerOf: (req: http.IncomingMessage) => UploadOwner | undefined;
  /** Bytes of a tus upload received so far, for the owner's live progress. */
  readonly received: (ownerId: string, progress: { uploadId: string; offset: number; size: number | undefined }) => void;
  /** Failures on our side (with their stack and the request's id) and what the start-up check of the store finds (default: nowhere). */
  readonly log?: UploadLogger;
  /** The id the gateway gave a request, named in those logs. */
  readonly requestIdOf?: (req: http.IncomingMessage) => string | undefined;
  /** Adds the `uploads` check to the node's health: whether the store answers what resumable uploads need (cluster mode). */
  readonly registerHealthCheck?: (name: string, check: HealthCheck) => void;
}

/** The catalogue and quota as broker calls to the `users` and `media` services. */
export function uploadCatalogueThrough(call: <T>(action: string, params: object) => Promise<T>): UploadCatalogue<unknown> {
  return {
    reserveQuota: (reservation) => call("users.reserveQuota", reservation),
    commitReservation: (reservationId, bytes) => call("users.commitReservation", { reservationId, bytes }),
    releaseReservation: (reservationId) => call("users.releaseReservation", { reservationId }),
    releaseQuota: (userId, bytes) => call("users.releaseQuota", { userId, bytes }),
    createMedia: (media) => call("media.create", media),
  };
}

/** While the store's check fails, how long health answers the last result before the check runs again. */
const STORE_RECHECK_MS = 15_000;

/** The form's own framing around the file, allowed beyond the largest file. */
const MULTIPART_FRAMING_BYTES = 64 * 1024;
const MULTIPART_RESERVATION_MS = 3600_000;
const EXPIRY_SWEEP_INTERVAL_MS = 15 * 60_000;

/** Both ways in for bytes: tus (resumable) and multipart/form-data (scripts), through the same checks and catalogue. */
export class UploadGateway {
  readonly tus: TusUploads;
  private expirySweep: { tasks: PeriodicTasks; task: PeriodicTask<number> } | undefined;

  constructor(private readonly options: UploadGatewayOptions) {
    const { catalogue, uploads } = options;
    const outcomeTtlMs = uploads.expirySeconds * 1000;
    this.tus = new TusUploads({
      path: "/api/uploads",
      uploads,
      storage: options.storageSettings,
      storageOutage: options.storage.outage,
      redis: options.redis,
      log: options.log,
      requestIdOf: options.requestIdOf,
      hooks: {
        ownerOf: options.ownerOf,
        async beforeCreate(owner, reservation) {
          await options.consumeUpload(owner.id);
          await catalogue.reserveQuota({ ...reservation, userId: owner.id });
        },
        accept: async (owner, upload, content) => {
          const metadata = upload.metadata ?? {};
          const { media } = await acceptUpload(
            content,
            {
              ownerId: owner.id,
              reservationId: String(metadata.reservationId),
              title: metadata.title?.slice(0, 200) || undefined,
              originalName: metadata.filename?.slice(0, 255) || undefined,
              declaredMime: metadata.filetype?.slice(0, 100) || undefined,
            },
            this.dependencies,
          );
          return { mediaId: (media as { id: string }).id };
        },
        release: (reservationId) => catalogue.releaseReservation(reservationId),
        received: options.received,
        recordOutcome: (uploadId, ownerId, outcome) => options.outcomes.remember(uploadId, JSON.stringify({ ownerId, ...outcome }), outcomeTtlMs),
      },
    });
    this.watchStore();
  }

  /**
   * Checks once at start that the store answers what resumable uploads need (S3: the multipart calls), logs
   * what fails, and keeps the result as the `uploads` health check; while it fails, it is checked again at
   * most every STORE_RECHECK_MS, in the background of the health requests.
   */
  private watchStore(): void {
    const log = this.options.log ?? SILENT_LOGGER;
    let failing = false;
    const run = (): Promise<CheckResult> | undefined =>
      this.tus.checkStore()?.then((result) => {
        if (result.status !== "ok") log.error(`Resumable uploads will fail: ${String(result.error)}`);
        else if (failing) log.info("Resumable uploads: the store now answers every call they need.");
        failing = result.status !== "ok";
        return result;
      });
    const first = run();
    if (!first) return;
    let current: Promise<CheckResult> = first;
    let checkedAt = Date.now();
    this.options.registerHealthCheck?.("uploads", async () => {
      const known = await current;
      if (known.status !== "ok" && Date.now() - checkedAt >= STORE_RECHECK_MS) {
        checkedAt = Date.now();
        current = run() ?? current;
      }
      return known;
    });
  }

  private get dependencies(): Parameters<typeof acceptUpload>[2] {
    return { storage: this.options.storage, catalogue: this.options.catalogue, limits: this.options.uploads };
  }

  handleTus(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.tus.handle(req, res);
  }

  /** POST /api/media: one file as multipart/form-data, streamed through the same checks as a tus upload. */
  async receiveMultipart(req: http.IncomingMessage, owner: UploadOwner | undefined): Promise<{ status: number; body: unknown }> {
    if (!owner) throw new UnauthenticatedError("Sign in to upload.");
    await this.options.consumeUpload(owner.id);
    const largest = Math.max(...Object.values(this.options.uploads.maxBytes));
    const declared = Number(req.headers["content-length"]) || 0;
    if (declared > largest + MULTIPART_FRAMING_BYTES) throw tooLarge(undefined, largest);
    const reservationId = `form:${nanoid()}`;
    const { catalogue } = this.options;
    await catalogue.reserveQuota({ reservationId, userId: owner.id, bytes: declared, expiresAt: Date.now() + MULTIPART_RESERVATION_MS });
    const result = await receiveMultipartFile(req, largest, (file) =>
      acceptUpload(
        file.stream,
        {
          ownerId: owner.id,
          reservationId,
          title: file.fields.title?.slice(0, 200) || undefined,
          originalName: file.filename?.slice(0, 255) || undefined,
          declaredMime: file.mimeType?.slice(0, 100) || undefined,
        },
        this.dependencies,
      ),
    ).catch(async (error: unknown) => {
      await catalogue.releaseReservation(reservationId).catch(() => undefined);
      throw error;
    });
    return { status: result.duplicate ? 200 : 201, body: result };
  }

  /** What the owner's finished tus upload became: its media id, or the error that refused it. */
  async outcomeOf(uploadId: string, ownerId: string): Promise<string> {
    const recorded = await this.options.outcomes.recall(uploadId);
    const outcome = recorded ? (JSON.parse(recorded) as UploadOutcome & { ownerId: string }) : undefined;
    if (!outcome || outcome.ownerId !== ownerId) throw new NotFoundError("finished upload");
    if ("error" in outcome) throw new AppError(outcome.error.status, outcome.error.code, outcome.error.message);
    return outcome.mediaId;
  }

  /** Drops expired unfinished uploads every 15 minutes, on one node at a time, until closed (their quota reservations expire on their own). */
  sweepExpiredOn(tasks: PeriodicTasks): void {
    const task = tasks.schedule({
      name: "upload-expiry-sweep",
      schedule: { everyMs: EXPIRY_SWEEP_INTERVAL_MS },
      log: this.options.log ?? SILENT_LOGGER,
      run: () => this.tus.sweepExpired(),
    });
    this.expirySweep = { tasks, task };
  }

  close(): void {
    // Stops firing at once; a sweep in progress ends by itself.
    void this.expirySweep?.tasks.unschedule(this.expirySweep.task);
    this.tus.close();
  }
}

import { Readable } from "node:stream";
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { NotFoundError } from "../errors";
import type { CheckResult } from "../health";
import {
  assertContentType,
  assertObjectKey,
  assertObjectPrefix,
  contentTypeForKey,
  InvalidObjectKeyError,
  RangeNotSatisfiableError,
} from "./storage-rules";
import { storedCacheControl } from "./object-keys";
import { s3ClientConfig, signPayloadsUnsigned, signsPayloadUnsigned } from "./s3-client";
import type { S3StorageOptions } from "./s3-client";
import { describeStorageFailure, isStorageSilent, reportUnreachableAsUnavailable } from "./s3-unreachable";
import { StorageOutage } from "./storage-outage";
import type { ByteRange, ObjectInfo, ObjectStorage, PutInfo, PutOptions, SignedUrlOptions, StagedContent, StoredObject } from "./object-storage";
import { attachmentDisposition, signedObjectCacheControl, signingWindow } from "./signed-url";

/** Large enough that a typical photo is one PUT, small enough that a multi-GB video stays far below 10,000 parts (80 GB). */
const PART_SIZE = 8 * 1024 * 1024;
/** S3's smallest part (but the last), for bodies produced over time: the part left to send at their end is at most this. */
const MIN_PART_SIZE = 5 * 1024 * 1024;
/** Parts in flight per upload, each buffered in memory: 2 × 8 MiB keeps a gateway's memory per upload small. */
const UPLOAD_QUEUE_SIZE = 2;
/** An outage's probe (HeadBucket, which a working store answers at once) gets this long. */
const S3_PROBE_TIMEOUT_MS = 5000;
/** The largest object one CopyObject can copy. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;
/** DeleteObjects takes at most 1000 keys per request. */
const DELETE_BATCH = 1000;
/** HEAD requests in flight while list() fetches content types (ListObjectsV2 does not return them). */
const HEAD_CONCURRENCY = 8;

function isNotFound(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.name === "NoSuchKey" || error.name === "NotFound");
}

function isInvalidRange(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.name === "InvalidRange" || error.$metadata.httpStatusCode === 416);
}

/** The object's whole length from `Content-Range: bytes 0-99/5000`. */
function totalLength(contentRange: string | undefined): number | undefined {
  const match = contentRange === undefined ? null : /\/(\d+)$/.exec(contentRange);
  return match === null ? undefined : Number(match[1]);
}

/** Objects in an S3 bucket (cluster mode). Object keys follow the same rules as LocalStorage's. */
export class S3Storage implements ObjectStorage {
  readonly kind = "s3";
  /** Shared with the resumable-upload store's client, which reaches the same bucket. */
  readonly outage: StorageOutage;
  private readonly client: S3Client;
  /** Outside the outage's guard, to find out when it ends. */
  private readonly probeClient: S3Client;

  constructor(private readonly options: S3StorageOptions) {
    this.client = new S3Client({ ...s3ClientConfig(options), maxAttempts: 2 });
    this.probeClient = new S3Client({ ...s3ClientConfig(options), maxAttempts: 1 });
    this.outage = new StorageOutage(async () => {
      // A probe sent while the store hung is not answered once it is back: bounded, so that the next one goes out.
      const bound = AbortSignal.timeout(S3_PROBE_TIMEOUT_MS);
      try {
        await this.probeClient.send(new HeadBucketCommand({ Bucket: options.bucket }), { abortSignal: bound });
      } catch (error) {
        // Any answer (a refusal, a 5xx too) means the store is reached again.
        if (bound.aborted || isStorageSilent(error)) throw error;
      }
    });
    if (signsPayloadUnsigned(options)) signPayloadsUnsigned(this.client);
    reportUnreachableAsUnavailable(this.client, this.outage);
  }

  /**
   * One PUT for a body up to 8 MiB, else a multipart upload in 8 MiB parts (a gradual body: 5 MiB, S3's
   * smallest). S3 makes an object visible only when the PUT or CompleteMultipartUpload succeeds, so readers
   * never see part of one. On failure the Upload aborts the
   * multipart upload (leavePartsOnError: false), so no parts are left billed; a lifecycle rule
   * "AbortIncompleteMultipartUpload" on the bucket is still the safety net for a node that dies mid-upload.
   */
  async put(key: string, body: Readable, contentType: string, options: PutOptions = {}): Promise<PutInfo> {
    try {
      assertObjectKey(key);
      assertContentType(contentType);
    } catch (error) {
      body.destroy();
      throw error;
    }
    // When the source fails, that is the error to report, not what the abort that follows it may raise.
    let sourceError: unknown;
    const onSourceError = (error: unknown): void => {
      sourceError ??= error;
    };
    body.on("error", onSourceError);
    const upload = new Upload({
      client: this.client,
      // Versioned variants are stored immutable, for a CDN or public bucket in front of them (MEDIA_PUBLIC_BASE_URL).
      params: { Bucket: this.options.bucket, Key: key, Body: body, ContentType: contentType, CacheControl: storedCacheControl(key) },
      partSize: options.gradual === true ? MIN_PART_SIZE : PART_SIZE,
      queueSize: UPLOAD_QUEUE_SIZE,
      leavePartsOnError: false,
    });
    // The size from the library's own count of what it sent (the last report is the whole body), and the
    // ETag from the store's answer: no HEAD after every PUT.
    let bytes = 0;
    upload.on("httpUploadProgress", (progress) => {
      bytes = Math.max(bytes, progress.loaded ?? 0);
    });
    let etag: string | undefined;
    try {
      ({ ETag: etag } = await upload.done());
    } catch (error) {
      body.destroy();
      throw sourceError ?? error;
    } finally {
      body.off("error", onSourceError);
    }
    if (etag === undefined) throw new Error(`the store gave no ETag for ${key}`);
    return { key, bytes, contentType, etag };
  }

  /** A server-side copy within the bucket, so the bytes do not pass through this process (up to 5 GiB; larger ones are streamed). */
  async adopt(staged: StagedContent, key: string, contentType: string): Promise<PutInfo> {
    if (staged.kind !== "object") throw new TypeError("S3 storage adopts staged objects only");
    assertObjectKey(key);
    assertContentType(contentType);
    const { bucket } = this.options;
    const source = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: staged.key }));
    if ((source.ContentLength ?? 0) > MAX_COPY_BYTES) {
      const output = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: staged.key }));
      if (!(output.Body instanceof Readable)) throw new Error("the S3 client returned a body that is not a Node stream");
      return this.put(key, output.Body, contentType);
    }
    const { CopyObjectResult: copied } = await this.client.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: key,
        CopySource: `${bucket}/${staged.key.split("/").map(encodeURIComponent).join("/")}`,
        ContentType: contentType,
        MetadataDirective: "REPLACE",
      }),
    );
    if (copied?.ETag === undefined) throw new Error(`the store gave no ETag for ${key}`);
    return { key, bytes: source.ContentLength ?? 0, contentType, etag: copied.ETag };
  }

  async get(key: string, range?: ByteRange): Promise<StoredObject> {
    assertObjectKey(key);
    if (range !== undefined) {
      const { start, end } = range;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
        throw new RangeNotSatisfiableError(undefined);
      }
    }
    try {
      const output = await this.client.send(
        new GetObjectCommand({
          Bucket: this.options.bucket,
          Key: key,
          Range: range === undefined ? undefined : `bytes=${range.start}-${range.end}`,
        }),
      );
      const body = output.Body;
      if (!(body instanceof Readable)) throw new Error("the S3 client returned a body that is not a Node stream");
      const bytes = (range === undefined ? output.ContentLength : totalLength(output.ContentRange)) ?? 0;
      const info: ObjectInfo = {
        key,
        bytes,
        contentType: output.ContentType ?? contentTypeForKey(key),
        etag: output.ETag ?? "",
        lastModified: output.LastModified ?? new Date(0),
      };
      return { info, body };
    } catch (error) {
      if (isNotFound(error)) throw new NotFoundError("file");
      if (isInvalidRange(error)) {
        const actual = Number((error as { ActualObjectSize?: unknown }).ActualObjectSize);
        throw new RangeNotSatisfiableError(Number.isSafeInteger(actual) ? actual : undefined);
      }
      throw error;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertObjectKey(key);
    try {
      const output = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return {
        key,
        bytes: output.ContentLength ?? 0,
        contentType: output.ContentType ?? contentTypeForKey(key),
        etag: output.ETag ?? "",
        lastModified: output.LastModified ?? new Date(0),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    // S3 answers 204 for a key that does not exist, so this is idempotent as it is.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const keys = await this.listKeys(prefix);
    const infos: Array<ObjectInfo | undefined> = new Array<ObjectInfo | undefined>(keys.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let index = next++; index < keys.length; index = next++) infos[index] = await this.head(keys[index]!);
    };
    await Promise.all(Array.from({ length: Math.min(HEAD_CONCURRENCY, keys.length) }, worker));
    // undefined: deleted between the listing and its HEAD.
    return infos.filter((info): info is ObjectInfo => info !== undefined);
  }

  async deletePrefix(prefix: string): Promise<number> {
    // An empty prefix would be the whole bucket: far more likely a bug upstream than an intent.
    if (prefix === "") throw new InvalidObjectKeyError("prefix", prefix);
    let deleted = 0;
    let batch: string[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const keys = batch;
      batch = [];
      const output = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.options.bucket,
          Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const errors = output.Errors ?? [];
      if (errors.length > 0) {
        const first = errors[0]!;
        throw new Error(`could not delete ${errors.length} of ${keys.length} objects under ${prefix}: ${first.Key ?? "?"}: ${first.Code ?? "?"} ${first.Message ?? ""}`);
      }
      deleted += keys.length;
    };
    // Deleting what a page listed does not disturb the continuation token, which points after its last key.
    for await (const page of this.pages(prefix)) {
      for (const object of page) {
        batch.push(object);
        if (batch.length === DELETE_BATCH) await flush();
      }
    }
    await flush();
    return deleted;
  }

  /**
   * Signed as of the start of the current window (signingWindow), so the URL is the same all through it, on
   * every node. The store is asked to send Cache-Control for the least time the URL has left when handed out.
   */
  async signedUrl(key: string, options: SignedUrlOptions): Promise<string> {
    assertObjectKey(key);
    const window = signingWindow(Math.floor(Date.now() / 1000), options.expiresInSeconds);
    const command = new GetObjectCommand({
      Bucket: this.options.bucket,
      Key: key,
      ResponseCacheControl: signedObjectCacheControl(window.windowSeconds),
      ...(options.downloadName === undefined ? {} : { ResponseContentDisposition: attachmentDisposition(options.downloadName) }),
    });
    return getSignedUrl(this.client, command, { signingDate: new Date(window.signedAt * 1000), expiresIn: window.expires - window.signedAt });
  }

  async check(): Promise<CheckResult> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
      return { status: "ok", kind: this.kind, bucket: this.options.bucket };
    } catch (error) {
      return { status: "down", kind: this.kind, bucket: this.options.bucket, error: describeStorageFailure(error) };
    }
  }

  async close(): Promise<void> {
    this.outage.stop();
    this.client.destroy();
    this.probeClient.destroy();
  }

  private async listKeys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const page of this.pages(prefix)) keys.push(...page);
    return keys;
  }

  /** Keys under the prefix, a page (up to 1000) at a time, in S3's order (UTF-8 bytes). */
  private async *pages(prefix: string): AsyncGenerator<string[]> {
    assertObjectPrefix(prefix);
    const paginator = paginateListObjectsV2(
      { client: this.client, pageSize: 1000 },
      { Bucket: this.options.bucket, Prefix: prefix === "" ? undefined : prefix },
    );
    for await (const page of paginator) {
      yield (page.Contents ?? []).flatMap((object) => (object.Key === undefined ? [] : [object.Key]));
    }
  }
}

import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { FileStore } from "@tus/file-store";
import { S3Store } from "@tus/s3-store";
import type { MetadataValue } from "@tus/s3-store";
import { ERRORS } from "@tus/utils";
import type { DataStore, KvStore, Upload } from "@tus/utils";
import type { Redis } from "ioredis";
import type { StorageSettings } from "../../config/settings";
import type { CheckResult } from "../health";
import type { StagedContent } from "../storage/object-storage";
import { checkMultipartUploads, s3ClientConfig } from "../storage/s3-client";
import { reportUnreachableAsUnavailable } from "../storage/s3-unreachable";
import type { StorageOutage } from "../storage/storage-outage";
import { RunningHashes } from "./running-hash";
import { flushToDisk } from "../storage/background-flush";

/** S3 part size for resumable uploads: a part is held in a temporary file until it is sent. */
const S3_PART_BYTES = 8 * 1024 * 1024;
/** While a PATCH streams to disk, its bytes are flushed this often, so that little is left to flush when it ends. */
const FLUSH_INTERVAL_MS = 250;
/**
 * Bytes a PATCH may have on their way to disk. fs streams default to 16 KiB, so every 64 KiB read from the
 * socket would wait for its write to finish before the next is read.
 */
const WRITE_BUFFER_BYTES = 1024 * 1024;

/** A tus data store that also hashes uploads as they arrive and hands finished ones over without copying them. */
export interface UploadStore extends DataStore {
  /** The whole upload, from its first byte. */
  read(id: string): Readable | Promise<Readable>;
  /** Where a finished upload's bytes are, for ObjectStorage.adopt(). */
  staged(id: string): StagedContent;
  /** The finished upload's SHA-256 when this process saw all of its bytes arrive. */
  sha256(id: string, size: number): Promise<string | undefined>;
  deleteExpired(): Promise<number>;
  /** Whether the store answers the calls resumable uploads make of it; absent when there is nothing to ask (files on disk). */
  checkResumable?(): Promise<CheckResult>;
}

/**
 * The S3 store's metadata cache, shared by the nodes through Redis. Unlike @tus/server's IoRedisKvStore its
 * entries expire with their upload: the store's expiry sweep deletes an abandoned upload's objects but not its
 * cache entry, which would stay in Redis for ever (and keep answering for the upload).
 */
class ExpiringRedisKvStore implements KvStore<MetadataValue> {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlMs: number,
  ) {}

  // A cache only: while Redis is out of reach, the store reads an upload's state from the bucket (a miss), and what
  // it would have cached is not. An entry whose delete failed expires with its upload, whose objects are gone.
  async get(key: string): Promise<MetadataValue | undefined> {
    const value = await this.redis.get(this.prefix + key).catch(() => null);
    return value === null ? undefined : (JSON.parse(value) as MetadataValue);
  }

  async set(key: string, value: MetadataValue): Promise<void> {
    await this.redis.set(this.prefix + key, JSON.stringify(value), "PX", this.ttlMs).catch(() => undefined);
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.prefix + key).catch(() => undefined);
  }
}

function isMissingObject(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  return name === "NoSuchKey" || name === "NotFound";
}

/**
 * Upload state and bytes in the media bucket (cluster mode).
 *
 * @tus/s3-store's remove() aborts the multipart upload before deleting the upload's objects. Once the
 * upload has been completed that abort fails (NoSuchUpload) and nothing is deleted, which would leave the
 * assembled file and its .info in the bucket after every finished upload; and it never deletes an
 * unfinished upload's incomplete part (.part). Here all three go, whatever the abort says.
 *
 * Its getUpload() answers "not found" for any failure to read an upload's state (a bucket gone, the store
 * unreachable); here only a missing upload is "not found", and anything else is the failure it is.
 */
class S3UploadStore extends S3Store implements UploadStore {
  private readonly hashes: RunningHashes;

  constructor(storage: Extract<StorageSettings, { kind: "s3" }>, redis: Redis | undefined, expiryMs: number, outage?: StorageOutage) {
    super({
      partSize: S3_PART_BYTES,
      expirationPeriodInMilliseconds: expiryMs,
      cache: redis ? new ExpiringRedisKvStore(redis, "shoal:tus:upload:", expiryMs) : undefined,
      s3ClientConfig: { ...s3ClientConfig(storage), bucket: storage.bucket },
    });
    this.hashes = new RunningHashes(expiryMs);
    reportUnreachableAsUnavailable(this.client, outage);
  }

  override write(readable: Readable, id: string, offset: number): Promise<number> {
    return this.hashes.write(readable, id, offset, (hashed) => super.write(hashed, id, offset));
  }

  override async getUpload(id: string): Promise<Upload> {
    try {
      // Cached once read, so the store's own getUpload() does not read it again.
      await this.getMetadata(id);
    } catch (error) {
      throw isMissingObject(error) ? ERRORS.FILE_NOT_FOUND : error;
    }
    return super.getUpload(id);
  }

  checkResumable(): Promise<CheckResult> {
    return checkMultipartUploads(this.client, this.bucket);
  }

  staged(id: string): StagedContent {
    return { kind: "object", key: id };
  }

  sha256(id: string, size: number): Promise<string | undefined> {
    return this.hashes.digest(id, size);
  }

  override async remove(id: string): Promise<void> {
    this.hashes.forget(id);
    try {
      await super.remove(id);
    } catch (error) {
      if ((error as { name?: string }).name !== "NoSuchUpload") throw error;
    }
    await this.client.deleteObjects({
      Bucket: this.bucket,
      Delete: { Objects: [{ Key: id }, { Key: this.infoKey(id) }, { Key: this.partKey(id, true) }], Quiet: true },
    });
    await this.clearCache(id);
  }
}

/**
 * Upload state and bytes under the data directory (embedded mode), beside the objects, so that a finished
 * upload is renamed into place. remove() also drops the upload's state once its file has been taken.
 */
class LocalUploadStore extends FileStore implements UploadStore {
  private readonly hashes: RunningHashes;
  private readonly flushing = new Set<string>();

  constructor(directory: string, expiryMs: number) {
    super({ directory, expirationPeriodInMilliseconds: expiryMs });
    this.hashes = new RunningHashes(expiryMs);
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const timer = setInterval(() => this.flushInBackground(id), FLUSH_INTERVAL_MS);
    try {
      return await this.hashes.write(readable, id, offset, (hashed) => this.writeAt(hashed, id, offset));
    } finally {
      clearInterval(timer);
      this.flushInBackground(id);
    }
  }

  staged(id: string): StagedContent {
    return { kind: "file", path: path.join(this.directory, id) };
  }

  sha256(id: string, size: number): Promise<string | undefined> {
    return this.hashes.digest(id, size);
  }

  /** FileStore.write() with a larger write buffer: the bytes go into the upload's file from `offset`; answers the new offset. */
  private async writeAt(readable: Readable, id: string, offset: number): Promise<number> {
    const file = createWriteStream(path.join(this.directory, id), { flags: "r+", start: offset, highWaterMark: WRITE_BUFFER_BYTES });
    // A failure propagates as it is (not as tus's FILE_WRITE_ERROR), so that the log says what went wrong.
    await pipeline(readable, file);
    return offset + file.bytesWritten;
  }

  /**
   * Writes the upload's bytes received so far to disk, one flush at a time per upload, without waiting.
   * Durability comes from the flush when the upload is adopted; these only spread the disk writes out.
   */
  private flushInBackground(id: string): void {
    if (this.flushing.has(id)) return;
    this.flushing.add(id);
    void flushToDisk(path.join(this.directory, id)).finally(() => this.flushing.delete(id));
  }

  override async remove(id: string): Promise<void> {
    this.hashes.forget(id);
    try {
      await fs.unlink(path.join(this.directory, id));
    } catch (error) {
      if ((error as { code?: string }).code !== "ENOENT") throw error;
    }
    await this.configstore.delete(id);
  }
}

export function createUploadStore(
  storage: StorageSettings,
  uploadsDir: string,
  redis: Redis | undefined,
  expiryMs: number,
  outage?: StorageOutage,
): UploadStore {
  return storage.kind === "s3" ? new S3UploadStore(storage, redis, expiryMs, outage) : new LocalUploadStore(uploadsDir, expiryMs);
}

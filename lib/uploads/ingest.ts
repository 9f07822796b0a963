import { pipeline, Readable, Transform } from "node:stream";
import type { TransformCallback } from "node:stream";
import { finished } from "node:stream/promises";
import { fromBuffer } from "file-type";
import type { MediaKind } from "../../config/settings";
import { AppError, BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from "../errors";
import { originalKey } from "../storage/object-keys";
import type { ObjectStorage, StagedContent } from "../storage/object-storage";
import { acceptedType } from "./allowed-types";
import { declaredImageSize, IMAGE_HEADER_READ_LIMIT, tiffDirectorySize, tiffLayout } from "./image-header";
import type { TiffLayout } from "./image-header";
import { Sha256Thread } from "./sha256-thread";
import type { AcceptedType } from "./allowed-types";

/** file-type needs at most this many leading bytes to recognise any format it knows. */
const SNIFF_BYTES = 4100;

export interface IngestLimits {
  readonly maxBytes: Readonly<Record<MediaKind, number>>;
  readonly maxImagePixels: number;
}

export interface Ingested {
  readonly key: string;
  readonly type: AcceptedType;
  readonly bytes: number;
  readonly sha256: string;
}

export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function tooLarge(kind: MediaKind | undefined, limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`This ${kind ?? "file"} is larger than the ${formatBytes(limit)} allowed.`);
}

/** What the content is, from its first bytes; undefined when unknown or unreadable (a corrupt header is not an error here). */
export async function sniffMime(head: Buffer): Promise<string | undefined> {
  try {
    return (await fromBuffer(head))?.mime;
  } catch {
    return undefined;
  }
}

/**
 * A stream's first bytes, read ahead as far as asked, and then the whole stream from its first byte
 * (nothing lost). Only what was asked for is held in memory.
 */
class ReadAhead {
  private readonly iterator: AsyncIterator<unknown>;
  private readonly chunks: Buffer[] = [];
  private held = 0;
  private ended = false;

  constructor(source: Readable) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Reads on until at least `bytes` are held or the stream ends; returns all that is held. */
  async fill(bytes: number): Promise<{ head: Buffer; ended: boolean }> {
    while (this.held < bytes && !this.ended) {
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        break;
      }
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
      this.chunks.push(chunk);
      this.held += chunk.length;
    }
    return { head: Buffer.concat(this.chunks, this.held), ended: this.ended };
  }

  whole(): Readable {
    const { chunks, iterator } = this;
    const ended = this.ended;
    async function* everything() {
      yield* chunks;
      if (ended) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    }
    return Readable.from(everything(), { objectMode: false });
  }
}

/** Counts and hashes the bytes passing through (the hashing on its own thread), failing the stream once they exceed the limit. */
class MeasuringStream extends Transform {
  readonly hash = Sha256Thread.shared().create();
  bytes = 0;

  constructor(
    private readonly limit: number,
    private readonly tooLargeError: () => Error,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      callback(this.tooLargeError());
      return;
    }
    this.hash.passOn(chunk, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (error) this.hash.forget();
    callback(error);
  }
}

function emptyUpload(): BadRequestError {
  return new BadRequestError("The file is empty.", "empty_upload");
}

/** The refusal of an image whose header declares more pixels than accepted; undefined when it is within the limit. */
export function overPixelLimit(width: number, height: number, maxPixels: number): AppError | undefined {
  const pixels = width * height;
  if (pixels <= maxPixels) return undefined;
  return new AppError(
    422,
    "image_too_large",
    `This image declares ${width}×${height} pixels (${(pixels / 1e6).toFixed(0)} megapixels); at most ${(maxPixels / 1e6).toFixed(0)} megapixels are accepted.`,
  );
}

function headerTooFar(): AppError {
  return new AppError(
    422,
    "image_header_too_far",
    `This image does not state its size within its first ${formatBytes(IMAGE_HEADER_READ_LIMIT)}, so it cannot be checked before it is stored.`,
  );
}

/**
 * Passes the bytes on unchanged, picking out a TIFF's first directory as it goes by (only that is held),
 * and fails the stream when the size it declares is over the pixel limit.
 */
class TiffDirectoryWatch extends Transform {
  /** Why the stream was failed, if it was. */
  refusal: AppError | undefined;
  private offset = 0;
  private readonly directory: Buffer[] = [];
  private held = 0;
  private decided = false;

  constructor(
    private readonly layout: TiffLayout,
    private readonly maxPixels: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const start = Math.max(this.layout.directoryAt - this.offset, 0);
    this.offset += chunk.length;
    if (!this.decided && start < chunk.length) {
      const part = chunk.subarray(start, start + IMAGE_HEADER_READ_LIMIT - this.held);
      this.directory.push(part);
      this.held += part.length;
      const declared = tiffDirectorySize(Buffer.concat(this.directory, this.held), this.layout);
      if (declared.found === "size") this.refusal = overPixelLimit(declared.width, declared.height, this.maxPixels);
      else if (declared.found === "incomplete" && this.held >= IMAGE_HEADER_READ_LIMIT) this.refusal = headerTooFar();
      this.decided = declared.found !== "incomplete" || this.refusal !== undefined;
      if (this.decided) this.directory.length = 0;
      if (this.refusal) {
        callback(this.refusal);
        return;
      }
    }
    callback(null, chunk);
  }
}

interface Classified {
  readonly type: AcceptedType;
  /** A TIFF whose first directory lies past what is read ahead: it is checked as the bytes pass (TiffDirectoryWatch). */
  readonly tiffDirectory?: TiffLayout;
}

/**
 * Decides from the content's first bytes whether it is accepted and what it is; throws the refusal otherwise.
 * An image's declared size is checked against the pixel limit here, before anything is stored: its header
 * is read as far as it goes, up to IMAGE_HEADER_READ_LIMIT. A TIFF directory lying further is left to
 * TiffDirectoryWatch.
 */
async function classify(ahead: ReadAhead, limits: IngestLimits): Promise<Classified> {
  let { head, ended } = await ahead.fill(SNIFF_BYTES);
  if (head.length === 0) throw emptyUpload();
  const sniffed = await sniffMime(head);
  const type = acceptedType(sniffed);
  if (!type) {
    throw new UnsupportedMediaTypeError(
      sniffed
        ? `Files of type ${sniffed} are not accepted. Upload an image (JPEG, PNG, GIF, WebP, AVIF, HEIC, TIFF), a video (MP4, MOV, WebM, MKV) or audio (MP3, AAC, M4A, Ogg, Opus, FLAC, WAV).`
        : "This file is not a supported image, video or audio file.",
    );
  }
  if (type.kind !== "image") return { type };
  for (;;) {
    const declared = declaredImageSize(head, type.mime);
    if (declared.found === "size") {
      const refusal = overPixelLimit(declared.width, declared.height, limits.maxImagePixels);
      if (refusal) throw refusal;
      return { type };
    }
    // A damaged file, or a whole one without a readable size, is left to the processor, which refuses what it cannot decode.
    if (declared.found === "none" || ended) return { type };
    const layout = type.mime === "image/tiff" ? tiffLayout(head) : undefined;
    if (typeof layout === "object" && layout.directoryAt >= IMAGE_HEADER_READ_LIMIT) return { type, tiffDirectory: layout };
    if (head.length >= IMAGE_HEADER_READ_LIMIT) throw headerTooFar();
    ({ head, ended } = await ahead.fill(Math.min(head.length * 2, IMAGE_HEADER_READ_LIMIT)));
  }
}

/**
 * Takes an upload's bytes as they stream in, decides what they are from the content
 * itself, enforces the size limit of that kind on the bytes actually received, computes
 * the SHA-256 on the way, and stores them as the original of `mediaId`. Refused content
 * leaves no object behind. Memory use does not depend on the size of the upload.
 */
export async function ingest(source: Readable, mediaId: string, storage: ObjectStorage, limits: IngestLimits): Promise<Ingested> {
  const ahead = new ReadAhead(source);
  let classified: Classified;
  try {
    classified = await classify(ahead, limits);
  } catch (error) {
    source.destroy();
    throw error;
  }
  const { type, tiffDirectory } = classified;
  const limit = limits.maxBytes[type.kind];
  const measuring = new MeasuringStream(limit, () => tooLarge(type.kind, limit));
  const watch = tiffDirectory && new TiffDirectoryWatch(tiffDirectory, limits.maxImagePixels);
  // The store may prepare (open a file, start an upload) before it listens to the stream: a failure upstream in
  // the meantime must not be an unheard 'error' event. The store then finds the stream failed and rejects.
  pipeline(watch ? [ahead.whole(), watch, measuring] : [ahead.whole(), measuring], () => undefined);
  const key = originalKey(mediaId, type.extension);
  let sha256: string;
  try {
    await storage.put(key, measuring, type.mime);
    sha256 = await measuring.hash.digest();
  } catch (error) {
    measuring.hash.forget();
    source.destroy();
    await storage.delete(key).catch(() => undefined);
    throw watch?.refusal ?? error;
  }
  return { key, type, bytes: measuring.bytes, sha256 };
}

/** A finished resumable upload, its bytes already stored beside the objects. */
export interface StagedUpload {
  readonly staged: StagedContent;
  readonly bytes: number;
  /** Known when the upload was hashed as it arrived. */
  readonly sha256: string | undefined;
  /** The content from its first byte. */
  open(): Promise<Readable>;
}

async function hashOf(content: Readable): Promise<string> {
  const hash = Sha256Thread.shared().create();
  try {
    for await (const chunk of content) await hash.update(chunk as Buffer);
  } catch (error) {
    hash.forget();
    throw error;
  }
  return hash.digest();
}

/**
 * The same checks as ingest() for an upload that is already stored: what it is comes from its first bytes,
 * and it becomes the original of `mediaId` without being copied where the storage allows (see
 * ObjectStorage.adopt). It is read once: its first bytes only, or all of it when its SHA-256 is not yet
 * known. Refused content is not adopted; removing it is the upload store's business.
 */
export async function ingestStaged(upload: StagedUpload, mediaId: string, storage: ObjectStorage, limits: IngestLimits): Promise<Ingested> {
  const content = await upload.open();
  let type: AcceptedType;
  let sha256: string;
  try {
    if (upload.bytes === 0) throw emptyUpload();
    const ahead = new ReadAhead(content);
    const { type: classifiedType, tiffDirectory } = await classify(ahead, limits);
    type = classifiedType;
    const limit = limits.maxBytes[type.kind];
    if (upload.bytes > limit) throw tooLarge(type.kind, limit);
    // Read on when a TIFF's directory lies further or the SHA-256 is unknown (another node took some of the
    // PATCHes): one read serves both.
    const rest = () =>
      tiffDirectory ? pipeline(ahead.whole(), new TiffDirectoryWatch(tiffDirectory, limits.maxImagePixels), () => undefined) : ahead.whole();
    if (upload.sha256 !== undefined) {
      sha256 = upload.sha256;
      if (tiffDirectory) await finished(rest().resume());
    } else {
      sha256 = await hashOf(rest());
    }
  } finally {
    content.destroy();
  }
  const key = originalKey(mediaId, type.extension);
  try {
    const stored = await storage.adopt(upload.staged, key, type.mime);
    return { key, type, bytes: stored.bytes, sha256 };
  } catch (error) {
    await storage.delete(key).catch(() => undefined);
    throw error;
  }
}

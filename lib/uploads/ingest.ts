import { Readable, Transform } from "node:stream";
import type { TransformCallback } from "node:stream";
import { fromBuffer } from "file-type";
import { imageSize } from "image-size";
import type { MediaKind } from "../../config/settings";
import { AppError, BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from "../errors";
import { originalKey } from "../storage/object-keys";
import type { ObjectStorage, StagedContent } from "../storage/object-storage";
import { acceptedType } from "./allowed-types";
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

/** Pixels an image's header declares, read without decoding; undefined when the header does not say (within the bytes seen). */
function declaredPixels(head: Buffer): number | undefined {
  try {
    const { width, height } = imageSize(head);
    return width && height ? width * height : undefined;
  } catch {
    return undefined;
  }
}

/** Reads until `bytes` are buffered or the stream ends; returns them and a stream of everything (nothing lost). */
async function peek(source: Readable, bytes: number): Promise<{ head: Buffer; whole: Readable }> {
  const chunks: Buffer[] = [];
  let length = 0;
  const iterator = source[Symbol.asyncIterator]();
  let done = false;
  while (length < bytes) {
    const next = (await iterator.next()) as IteratorResult<Buffer>;
    if (next.done) {
      done = true;
      break;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    chunks.push(chunk);
    length += chunk.length;
  }
  const head = Buffer.concat(chunks);
  async function* everything() {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const next = (await iterator.next()) as IteratorResult<Buffer>;
      if (next.done) return;
      yield next.value;
    }
  }
  return { head, whole: Readable.from(everything(), { objectMode: false }) };
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

/** Decides from the content's first bytes whether it is accepted and what it is; throws the refusal otherwise. */
async function classify(head: Buffer, limits: IngestLimits): Promise<AcceptedType> {
  if (head.length === 0) throw new BadRequestError("The file is empty.", "empty_upload");
  const sniffed = await sniffMime(head);
  const type = acceptedType(sniffed);
  if (!type) {
    throw new UnsupportedMediaTypeError(
      sniffed
        ? `Files of type ${sniffed} are not accepted. Upload an image (JPEG, PNG, GIF, WebP, AVIF, HEIC), a video (MP4, MOV, WebM, MKV) or audio (MP3, AAC, M4A, Ogg, Opus, FLAC, WAV).`
        : "This file is not a supported image, video or audio file.",
    );
  }
  if (type.kind === "image") {
    const pixels = declaredPixels(head);
    if (pixels !== undefined && pixels > limits.maxImagePixels) {
      throw new AppError(
        422,
        "image_too_large",
        `This image declares ${(pixels / 1e6).toFixed(0)} megapixels; at most ${(limits.maxImagePixels / 1e6).toFixed(0)} are accepted.`,
      );
    }
  }
  return type;
}

/**
 * Takes an upload's bytes as they stream in, decides what they are from the content
 * itself, enforces the size limit of that kind on the bytes actually received, computes
 * the SHA-256 on the way, and stores them as the original of `mediaId`. Refused content
 * leaves no object behind. Memory use does not depend on the size of the upload.
 */
export async function ingest(source: Readable, mediaId: string, storage: ObjectStorage, limits: IngestLimits): Promise<Ingested> {
  const { head, whole } = await peek(source, SNIFF_BYTES);
  let type: AcceptedType;
  try {
    type = await classify(head, limits);
  } catch (error) {
    if (head.length === 0) source.resume();
    else source.destroy();
    throw error;
  }
  const limit = limits.maxBytes[type.kind];
  const measuring = new MeasuringStream(limit, () => tooLarge(type.kind, limit));
  whole.on("error", (error) => measuring.destroy(error));
  const key = originalKey(mediaId, type.extension);
  let sha256: string;
  try {
    await storage.put(key, whole.pipe(measuring), type.mime);
    sha256 = await measuring.hash.digest();
  } catch (error) {
    measuring.hash.forget();
    source.destroy();
    await storage.delete(key).catch(() => undefined);
    throw error;
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
    const { head, whole } = await peek(content, SNIFF_BYTES);
    type = await classify(upload.bytes === 0 ? Buffer.alloc(0) : head, limits);
    const limit = limits.maxBytes[type.kind];
    if (upload.bytes > limit) throw tooLarge(type.kind, limit);
    // Unknown only when another node took some of the PATCHes: then the one read serves both.
    sha256 = upload.sha256 ?? (await hashOf(whole));
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

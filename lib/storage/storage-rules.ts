import path from "node:path";
import { AppError } from "../errors";
import type { ByteRange } from "./object-storage";

/*
 * Key rules, shared by both drivers so that a key works (or fails) the same in embedded and cluster mode.
 * Keys are made by Shoal (object-keys.ts), so these are a guard against bugs and hostile input that slipped
 * through, and they are what keeps LocalStorage inside its directory: segments of letters, digits and a few
 * URL-safe marks, never empty, never starting with a dot. That excludes "..", ".", absolute paths ("/x"
 * gives an empty first segment), backslashes, NUL and other control characters, and also the dot-files in
 * which LocalStorage keeps temporary files and metadata, so no key can name one of those.
 */
const MAX_KEY_LENGTH = 1024;
const KEY_SEGMENT = /^[A-Za-z0-9_~+=@,-][A-Za-z0-9._~+=@,-]{0,199}$/;

export class InvalidObjectKeyError extends Error {
  constructor(what: "key" | "prefix", value: string) {
    super(`invalid object ${what} ${JSON.stringify(value)}`);
    this.name = "InvalidObjectKeyError";
  }
}

/** The object ends before the range starts (HTTP 416). `size` is the object's length, for `Content-Range: bytes *\/size`. */
export class RangeNotSatisfiableError extends AppError {
  constructor(readonly size: number | undefined) {
    super(416, "range_not_satisfiable", "The requested byte range is not within the file.");
  }
}

export function isValidObjectKey(key: string): boolean {
  return key.length > 0 && key.length <= MAX_KEY_LENGTH && key.split("/").every((segment) => KEY_SEGMENT.test(segment));
}

export function assertObjectKey(key: string): void {
  if (!isValidObjectKey(key)) throw new InvalidObjectKeyError("key", key);
}

/** A prefix is "" or whole valid segments, each followed by "/", then optionally the start of one more segment. */
export function assertObjectPrefix(prefix: string): void {
  const segments = prefix.split("/");
  const last = segments.pop() ?? "";
  const valid =
    prefix.length <= MAX_KEY_LENGTH &&
    segments.every((segment) => KEY_SEGMENT.test(segment)) &&
    (last === "" || KEY_SEGMENT.test(last));
  if (!valid) throw new InvalidObjectKeyError("prefix", prefix);
}

// A type/subtype with optional parameters and nothing that could break out of a header line.
const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*(\s*;\s*[a-z0-9!#$&^_.+-]+=([a-z0-9!#$&^_.+-]+|"[^"\\\r\n]*"))*$/i;

export function isValidContentType(contentType: string): boolean {
  return contentType.length <= 255 && CONTENT_TYPE.test(contentType);
}

export function assertContentType(contentType: string): void {
  if (!isValidContentType(contentType)) {
    throw new TypeError(`invalid content type ${JSON.stringify(contentType)}`);
  }
}

/** By extension, for objects stored without metadata. Matches lib/uploads/allowed-types.ts and what variants are made of. */
const TYPES_BY_EXTENSION: Readonly<Record<string, string>> = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  heic: "image/heic",
  heif: "image/heif",
  tif: "image/tiff",
  mp4: "video/mp4",
  m4v: "video/mp4",
  mov: "video/quicktime",
  webm: "video/webm",
  mkv: "video/x-matroska",
  mp3: "audio/mpeg",
  aac: "audio/aac",
  m4a: "audio/mp4",
  ogg: "audio/ogg",
  oga: "audio/ogg",
  opus: "audio/opus",
  flac: "audio/flac",
  wav: "audio/wav",
  json: "application/json",
  vtt: "text/vtt",
};

export function contentTypeForKey(key: string): string {
  const extension = path.posix.extname(key).slice(1).toLowerCase();
  return TYPES_BY_EXTENSION[extension] ?? "application/octet-stream";
}

/** Inclusive bounds within an object of `size` bytes; an end past the object is cut to its last byte, as HTTP does. */
export function resolveRange(range: ByteRange, size: number): { start: number; end: number } {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || start >= size) {
    throw new RangeNotSatisfiableError(size);
  }
  return { start, end: Math.min(end, size - 1) };
}

/**
 * Object keys, laid out by media id: media/<id>/original.<ext>, media/<id>/<variant>.<version>.<ext>.
 *
 * A variant's key carries a version made anew each time the variant is stored, so a key never names two
 * different contents: a reprocessed item's variants get new keys, and so new URLs, and whatever browsers and
 * CDNs kept under an old URL may be kept for good (see IMMUTABLE_CACHE_CONTROL).
 */
import { randomBytes } from "node:crypto";

const SAFE_ID = /^[A-Za-z0-9_-]{10,40}$/;
const SAFE_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const SAFE_EXTENSION = /^[a-z0-9]{1,5}$/;
const VERSION = /^[A-Za-z0-9_-]{11}$/;
const VERSIONED_VARIANT_KEY = /^media\/[A-Za-z0-9_-]{10,40}\/[a-z0-9][a-z0-9-]{0,31}\.[A-Za-z0-9_-]{11}\.[a-z0-9]{1,5}$/;

/** How a CDN or browser may keep an object whose key never gets other content: a year, without revalidating. */
export const IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable";

function checked(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value)) throw new Error(`invalid ${what} for an object key: ${JSON.stringify(value)}`);
  return value;
}

export function mediaPrefix(mediaId: string): string {
  return `media/${checked(mediaId, SAFE_ID, "media id")}/`;
}

export function originalKey(mediaId: string, extension: string): string {
  return `${mediaPrefix(mediaId)}original.${checked(extension, SAFE_EXTENSION, "extension")}`;
}

/** 64 random bits, base64url: 11 characters. */
export function newVariantVersion(): string {
  return randomBytes(8).toString("base64url");
}

/** The key to store a variant under; each call without a version gives a new one. */
export function variantKey(mediaId: string, variant: string, extension: string, version: string = newVariantVersion()): string {
  return `${mediaPrefix(mediaId)}${checked(variant, SAFE_NAME, "variant name")}.${checked(version, VERSION, "version")}.${checked(extension, SAFE_EXTENSION, "extension")}`;
}

/** The Cache-Control an object is stored with: immutable for versioned variants, nothing for the rest. */
export function storedCacheControl(key: string): string | undefined {
  return VERSIONED_VARIANT_KEY.test(key) ? IMMUTABLE_CACHE_CONTROL : undefined;
}

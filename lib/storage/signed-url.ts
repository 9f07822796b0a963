/**
 * Signed URLs for objects in local storage: `/files/<key>?expires=<unix seconds>&signature=<mac>`,
 * plus `&download=<name>` when the browser should save the file under that name. Whoever holds such a
 * URL may GET the object until it expires, without a session; nothing is stored server-side.
 *
 * Pure functions (the clock is a parameter) so that the rules are unit-tested without a server.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { SignedUrlOptions } from "./object-storage";

export const FILES_PATH_PREFIX = "/files/";

/** The longest a URL may be signed for: S3 refuses presigned URLs beyond 7 days, so local storage does too. */
export const MAX_SIGNED_URL_SECONDS = 7 * 24 * 60 * 60;

const MAX_DOWNLOAD_NAME_LENGTH = 255;
// Control characters would corrupt the Content-Disposition header.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const EXPIRES_PATTERN = /^[0-9]{1,12}$/;

/** What a signature vouches for. */
export interface FileUrlClaims {
  readonly key: string;
  /** Unix time in seconds after which the URL is refused. */
  readonly expires: number;
  readonly downloadName?: string;
}

export type FileUrlVerification =
  | { readonly valid: true; readonly claims: FileUrlClaims }
  | { readonly valid: false; readonly reason: "malformed" | "expired" | "bad_signature" };

/**
 * The MAC key is derived from the secret rather than being the secret itself, because SHOAL_SECRET also
 * signs CSRF tokens: a value signed for one purpose can then never be replayed as the other.
 */
function urlKey(secret: string): Buffer {
  if (secret.length === 0) throw new Error("the URL signing secret is empty");
  return createHmac("sha256", secret).update("shoal/signed-file-url/v1").digest();
}

/** base64url HMAC-SHA256 over key, expiry and download name, encoded unambiguously (JSON array). */
export function fileUrlSignature(secret: string, claims: FileUrlClaims): string {
  const message = JSON.stringify([claims.key, claims.expires, claims.downloadName ?? null]);
  return createHmac("sha256", urlKey(secret)).update(message).digest("base64url");
}

export function assertDownloadName(name: string): void {
  if (name.length === 0 || name.length > MAX_DOWNLOAD_NAME_LENGTH || CONTROL_CHARACTERS.test(name)) {
    throw new RangeError(`invalid download name ${JSON.stringify(name)}`);
  }
}

export function assertExpiresInSeconds(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_SIGNED_URL_SECONDS) {
    throw new RangeError(`a signed URL must expire in 1 to ${MAX_SIGNED_URL_SECONDS} whole seconds, not ${seconds}`);
  }
}

/**
 * When a signed URL is made and until when it holds. Time is cut into windows of half the lifetime
 * (`W = max(1, floor(ttl / 2))` seconds, counted from the epoch); every URL handed out during window k is
 * signed as made at its start (`k·W`) and expires at the end of the next window (`(k + 2)·W`). So the same
 * object gets the same URL all through a window (browsers and caches can keep what they fetched), and a URL
 * has more than W and at most 2·W ≤ ttl seconds left when it is handed out.
 */
export interface SigningWindow {
  /** Unix seconds: the start of the current window, the time the URL is signed as of. */
  readonly signedAt: number;
  /** Unix seconds after which the URL is refused. */
  readonly expires: number;
  /** W: how long one URL is handed out, and the least time it has left when it is. */
  readonly windowSeconds: number;
}

export function signingWindow(nowSeconds: number, ttlSeconds: number): SigningWindow {
  assertExpiresInSeconds(ttlSeconds);
  const windowSeconds = Math.max(1, Math.floor(ttlSeconds / 2));
  const signedAt = Math.floor(nowSeconds / windowSeconds) * windowSeconds;
  return { signedAt, expires: signedAt + 2 * windowSeconds, windowSeconds };
}

/**
 * Cache-Control for an object fetched by signed URL: only the browser may keep it (the URL is the
 * permission), for as long as the URL holds, and need not revalidate meanwhile (keys are never rewritten
 * with other content: see object-keys.ts).
 */
export function signedObjectCacheControl(secondsLeft: number): string {
  return `private, max-age=${Math.max(0, Math.floor(secondsLeft))}, immutable`;
}

/** Each segment percent-encoded, so that the path survives any key a caller may sign. */
export function encodeKeyPath(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

/** A relative URL: the page that shows it is on the same origin as the file server. */
export function signFileUrl(secret: string, claims: FileUrlClaims, pathPrefix = FILES_PATH_PREFIX): string {
  if (claims.downloadName !== undefined) assertDownloadName(claims.downloadName);
  const query = new URLSearchParams({ expires: String(claims.expires) });
  if (claims.downloadName !== undefined) query.set("download", claims.downloadName);
  query.set("signature", fileUrlSignature(secret, claims));
  return `${pathPrefix}${encodeKeyPath(claims.key)}?${query.toString()}`;
}

function signaturesMatch(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Checks a request target (`req.url`, path and query, as the client sent it). The path is taken raw, not
 * through WHATWG URL parsing, which would resolve `..` and `%2e%2e` segments and so verify a different key
 * from the one that was asked for.
 */
export function verifyFileUrl(
  secret: string,
  requestTarget: string,
  nowSeconds: number,
  pathPrefix = FILES_PATH_PREFIX,
): FileUrlVerification {
  const malformed = { valid: false, reason: "malformed" } as const;
  const queryStart = requestTarget.indexOf("?");
  const rawPath = queryStart < 0 ? requestTarget : requestTarget.slice(0, queryStart);
  if (!rawPath.startsWith(pathPrefix) || queryStart < 0) return malformed;

  let key: string;
  try {
    key = rawPath.slice(pathPrefix.length).split("/").map(decodeURIComponent).join("/");
  } catch {
    return malformed;
  }
  const query = new URLSearchParams(requestTarget.slice(queryStart + 1));
  // One value per parameter: with two, which one was checked and which one is used could differ.
  for (const name of ["expires", "signature", "download"]) if (query.getAll(name).length > 1) return malformed;
  const expiresText = query.get("expires");
  const signature = query.get("signature");
  const downloadName = query.get("download") ?? undefined;
  if (key === "" || expiresText === null || signature === null) return malformed;
  if (!EXPIRES_PATTERN.test(expiresText) || !SIGNATURE_PATTERN.test(signature)) return malformed;

  const claims: FileUrlClaims = { key, expires: Number(expiresText), ...(downloadName === undefined ? {} : { downloadName }) };
  // The signature is checked before the expiry so that the answer does not tell whether a forged URL would have been current.
  if (!signaturesMatch(signature, fileUrlSignature(secret, claims))) return { valid: false, reason: "bad_signature" };
  if (claims.expires <= nowSeconds) return { valid: false, reason: "expired" };
  return { valid: true, claims };
}

/**
 * `attachment` with an ASCII fallback name for old clients and the exact name as RFC 8187 `filename*`.
 * Quotes, backslashes and anything outside printable ASCII become `_` in the fallback.
 */
export function attachmentDisposition(downloadName: string): string {
  assertDownloadName(downloadName);
  const fallback = downloadName.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  const encoded = encodeURIComponent(downloadName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return fallback === downloadName
    ? `attachment; filename="${fallback}"`
    : `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/** Signs with one secret and clock; what LocalStorage and the file server share. */
export class UrlSigner {
  constructor(
    private readonly secret: string,
    readonly pathPrefix: string = FILES_PATH_PREFIX,
    /** Milliseconds since the epoch; replaceable in tests. */
    private readonly now: () => number = Date.now,
  ) {
    urlKey(secret);
    if (!pathPrefix.startsWith("/") || !pathPrefix.endsWith("/")) throw new Error(`the path prefix must start and end with "/": ${pathPrefix}`);
  }

  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  sign(key: string, options: SignedUrlOptions): string {
    const claims: FileUrlClaims = {
      key,
      expires: signingWindow(this.nowSeconds(), options.expiresInSeconds).expires,
      ...(options.downloadName === undefined ? {} : { downloadName: options.downloadName }),
    };
    return signFileUrl(this.secret, claims, this.pathPrefix);
  }

  verify(requestTarget: string): FileUrlVerification {
    return verifyFileUrl(this.secret, requestTarget, this.nowSeconds(), this.pathPrefix);
  }
}

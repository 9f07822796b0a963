/**
 * Serves LocalStorage objects at their signed URLs (`/files/<key>?expires=...&signature=...`), the embedded
 * counterpart of S3's presigned URLs. No session is involved: the signature is the permission, so it is
 * checked before the file system is touched. Files are sent by the `send` package, which does ranges,
 * conditional requests and HEAD.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Stats } from "node:fs";
import { stat } from "node:fs/promises";
import send from "send";
import type { ErrorBody } from "./error-body";
import { localEtag } from "../storage/local-storage";
import { isValidObjectKey } from "../storage/storage-rules";
import type { LocalStorage } from "../storage/local-storage";
import { attachmentDisposition, encodeKeyPath, FILES_PATH_PREFIX, signedObjectCacheControl, UrlSigner } from "../storage/signed-url";

export type FileServerStorage = Pick<LocalStorage, "directory" | "contentTypeOf" | "filePath">;

export interface FileServerOptions {
  readonly storage: FileServerStorage;
  /** The secret LocalStorage signs with (SHOAL_SECRET). */
  readonly secret: string;
  /** Where the handler is mounted; request URLs still carry it. Default "/files/". */
  readonly pathPrefix?: string;
  /** Milliseconds since the epoch; for tests. */
  readonly now?: () => number;
}

export type FileRequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Types a browser may show inline from Shoal's own origin: none of them runs script. Anything else (HTML,
 * SVG, XML, PDF, unknown) is sent as an attachment, so that an object stored with such a type by mistake
 * cannot become stored cross-site scripting.
 */
const INLINE_SAFE_TYPE =
  /^(image\/(jpeg|png|gif|webp|avif|heic|heif)|video\/[a-z0-9.+-]+|audio\/[a-z0-9.+-]+|application\/json|text\/plain|text\/vtt)\s*(;|$)/i;

const ERROR_CODES: Readonly<Record<number, { code: string; message: string }>> = {
  400: { code: "bad_request", message: "The request was not accepted." },
  403: { code: "forbidden", message: "This link is not valid." },
  404: { code: "not_found", message: "The file was not found." },
  405: { code: "method_not_allowed", message: "Files can only be read (GET or HEAD)." },
  412: { code: "precondition_failed", message: "The file does not match the request's preconditions." },
  416: { code: "range_not_satisfiable", message: "The requested byte range is not within the file." },
  500: { code: "internal", message: "Something went wrong on our side; it has been logged." },
};

/**
 * On every answer, files and errors alike:
 * - a sandbox with nothing allowed, should a file be opened as a page of its own;
 * - Cross-Origin-Resource-Policy same-origin: these URLs are relative, signed for Shoal's own
 *   origin, and the only page that embeds them is Shoal's, at that origin. Objects behind
 *   MEDIA_PUBLIC_BASE_URL (a CDN or public bucket) are not served from here, so they need nothing
 *   looser; other sites cannot embed a file even with its URL.
 * - nosniff, so the declared type is the only one a browser goes by.
 */
const FILE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy": "default-src 'none'; sandbox",
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
};

function setSecurityHeaders(res: ServerResponse): void {
  for (const [name, value] of Object.entries(FILE_SECURITY_HEADERS)) res.setHeader(name, value);
}

/**
 * Whether a Range header is a well-formed byte range set (RFC 9110 §14.1.1): `bytes=` then
 * `first-last`, `first-` or `-suffix` items, commas between (empty items allowed), with no item
 * whose last position comes before its first. A malformed one is ignored, as the RFC allows, and
 * the whole file is sent; a well-formed one that does not fit the file still gets 416.
 */
export function isWellFormedByteRange(header: string): boolean {
  const match = /^bytes=(.*)$/i.exec(header.trim());
  if (!match) return false;
  const specs = (match[1] as string)
    .split(",")
    .map((spec) => spec.trim())
    .filter((spec) => spec !== "");
  return (
    specs.length > 0 &&
    specs.every((spec) => {
      const parts = /^(\d*)-(\d*)$/.exec(spec);
      if (!parts) return false;
      const [, first = "", last = ""] = parts;
      if (first === "") return last !== "";
      return last === "" || BigInt(last) >= BigInt(first);
    })
  );
}

/**
 * A well-formed range set as send (range-parser) should read it for a file of `size` bytes. Empty items are
 * dropped: range-parser would take the whole header for malformed and send the whole file. A suffix at
 * least as long as the file becomes the whole file (RFC 9110 §14.1.3), which range-parser would answer 416.
 */
export function byteRangeForSize(wellFormedHeader: string, size: number): string {
  const items = wellFormedHeader
    .trim()
    .slice("bytes=".length)
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
    .map((item) => (item.startsWith("-") && size > 0 && BigInt(item.slice(1)) >= BigInt(size) ? "0-" : item));
  return `bytes=${items.join(",")}`;
}

function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  options: { message?: string; headers?: Readonly<Record<string, string>> } = {},
): void {
  if (res.headersSent) {
    // Part of the file is already on its way: all that is left is to cut the response short.
    res.destroy();
    return;
  }
  const known = ERROR_CODES[status] ?? ERROR_CODES[status >= 500 ? 500 : 400]!;
  const body: ErrorBody = { error: { code: known.code, message: options.message ?? known.message, fields: {} } };
  const payload = JSON.stringify(body);
  // Drop what was prepared for the file (type, disposition, validators, caching).
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(payload));
  res.setHeader("Cache-Control", "no-store");
  setSecurityHeaders(res);
  for (const [name, value] of Object.entries(options.headers ?? {})) res.setHeader(name, value);
  res.end(req.method === "HEAD" ? undefined : payload);
}

export function createFileServer(options: FileServerOptions): FileRequestHandler {
  const signer = new UrlSigner(options.secret, options.pathPrefix ?? FILES_PATH_PREFIX, options.now);
  const { storage } = options;

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendError(req, res, 405, { headers: { Allow: "GET, HEAD" } });
      return;
    }
    const verification = signer.verify(req.url ?? "");
    if (!verification.valid) {
      sendError(req, res, 403, verification.reason === "expired" ? { message: "This link has expired." } : {});
      return;
    }
    const { key, expires, downloadName } = verification.claims;
    // Only a key we signed gets here; one outside the rules cannot name a stored file, whatever it looks like.
    if (!isValidObjectKey(key)) {
      sendError(req, res, 404);
      return;
    }

    // A shared cache must not keep it (the URL is the permission), and a browser only as long as the URL holds.
    res.setHeader("Cache-Control", signedObjectCacheControl(expires - signer.nowSeconds()));
    setSecurityHeaders(res);
    const contentType = await storage.contentTypeOf(key);
    res.setHeader("Content-Type", contentType);
    if (downloadName !== undefined) res.setHeader("Content-Disposition", attachmentDisposition(downloadName));
    else if (!INLINE_SAFE_TYPE.test(contentType)) res.setHeader("Content-Disposition", "attachment");

    // send (range-parser) would answer a malformed range with 416; it is ignored instead.
    const range = req.headers.range;
    if (range !== undefined && !isWellFormedByteRange(range)) delete req.headers.range;
    else if (range !== undefined) {
      // A missing file is send's to answer (404).
      const size = await stat(storage.filePath(key)).then((found) => found.size, () => undefined);
      if (size !== undefined) req.headers.range = byteRangeForSize(range, size);
    }

    const stream = send(req, `/${encodeKeyPath(key)}`, {
      root: storage.directory,
      index: false,
      dotfiles: "deny",
      // Set above, from the signature's lifetime.
      cacheControl: false,
    });
    // The same strong ETag as LocalStorage.head(), from the stat send serves; set first, so send keeps it.
    stream.on("headers", (response: ServerResponse, _path: string, stat: Stats) => {
      response.setHeader("ETag", localEtag(stat));
    });
    stream.on("directory", () => sendError(req, res, 404));
    stream.on("error", (error: { status?: number; statusCode?: number; headers?: Record<string, string> }) => {
      const status = error.status ?? error.statusCode ?? 500;
      // Only what send adds on purpose (Content-Range on 416) is passed on.
      const headers = status === 416 && error.headers !== undefined ? error.headers : undefined;
      sendError(req, res, status, headers === undefined ? {} : { headers });
    });
    stream.pipe(res);
  }

  return (req, res) => {
    serve(req, res).catch(() => sendError(req, res, 500));
  };
}

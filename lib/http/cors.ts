import type { IncomingMessage, ServerResponse } from "node:http";
import cors from "cors";

/** Request headers a page on another allowed origin may send: the API's and the tus protocol's. */
const ALLOWED_HEADERS = ["Content-Type", "Authorization", "X-CSRF-Token", "Upload-Length", "Upload-Offset", "Tus-Resumable", "Upload-Metadata"];
/** Answer headers such a page may read. */
const EXPOSED_HEADERS = [
  "Location",
  "Retry-After",
  "Shoal-Media-Id",
  "Upload-Offset",
  "Upload-Length",
  "Upload-Expires",
  "Upload-Metadata",
  "Tus-Resumable",
  "Tus-Version",
  "Tus-Extension",
  "Tus-Max-Size",
];

/**
 * CORS for `CORS_ORIGINS` only, on every API route (tus included). A request from any other origin gets
 * no CORS headers and goes on: a same-origin page needs none, and what a foreign page may change is the
 * origin check's to decide (lib/auth/session-gate.ts), so CORS never refuses Shoal's own page.
 */
export function corsFor(allowedOrigins: readonly string[]): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void {
  const allowed = new Set(allowedOrigins);
  return cors((req, callback) => {
    const origin = req.headers.origin;
    callback(null, {
      origin: origin !== undefined && allowed.has(origin) ? origin : false,
      credentials: true,
      methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: EXPOSED_HEADERS,
      maxAge: 600,
    });
  });
}

import { ForbiddenError } from "../errors";
import { isValidCsrfToken } from "./session-tokens";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export interface GuardedRequest {
  readonly method: string;
  readonly origin: string | undefined;
  readonly referer: string | undefined;
  readonly csrfToken: string | undefined;
  /** How the session came: a cookie is sent by the browser on its own, so it needs CSRF protection; a bearer token does not. */
  readonly session: { readonly id: string; readonly via: "cookie" | "bearer" } | undefined;
}

function originOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).origin;
  } catch {
    return "invalid";
  }
}

/**
 * Refuses cross-site state changes. Any state-changing request that names an origin
 * (Origin, else Referer) must come from an allowed one; one authenticated by cookie must
 * also name its origin and carry the session's CSRF token.
 */
export function guardStateChange(request: GuardedRequest, allowedOrigins: readonly string[], secret: string): void {
  if (SAFE_METHODS.has(request.method.toUpperCase())) return;
  const origin = request.origin && request.origin !== "null" ? originOf(request.origin) : originOf(request.referer);
  const byCookie = request.session?.via === "cookie";
  if (origin !== undefined && !allowedOrigins.includes(origin)) {
    throw new ForbiddenError("This request came from a page that may not change anything here.", "origin_not_allowed");
  }
  if (!byCookie) return;
  if (origin === undefined) {
    throw new ForbiddenError("This request does not say which page it came from.", "origin_not_allowed");
  }
  if (!isValidCsrfToken(secret, request.session!.id, request.csrfToken)) {
    throw new ForbiddenError("The CSRF token is missing or does not match your session; reload the page and try again.", "csrf_failed");
  }
}

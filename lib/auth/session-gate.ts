import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { parse as parseCookies, serialize as serializeCookie } from "cookie";
import type { SessionSettings } from "../../config/settings";
import { BadRequestError } from "../errors";
import { guardStateChange } from "./request-guard";
import { requestOriginResolver } from "./request-origin";
import { isSessionLive, shouldTouch } from "./session-lifetime";
import type { SessionTimes } from "./session-lifetime";
import { looksLikeSessionToken, sessionIdOf } from "./session-tokens";

export interface SessionUser {
  readonly id: string;
  readonly username: string;
  readonly role: "user" | "admin";
}

/** What the membership service answers for a session id. */
export interface ResolvedSession {
  readonly session: SessionTimes & { readonly id: string };
  readonly user: SessionUser;
}

/** The membership service, as the gate needs it. */
export interface SessionLookup {
  resolve(sessionId: string): Promise<ResolvedSession | null>;
  touch(sessionId: string): Promise<void>;
}

/** The lookup as broker calls: `users.resolveSession` and `users.touchSession`. */
export function sessionLookupThrough(call: <T>(action: string, params: object) => Promise<T>): SessionLookup {
  return {
    resolve: (sessionId) => call<ResolvedSession | null>("users.resolveSession", { sessionId }),
    touch: async (sessionId) => {
      await call("users.touchSession", { sessionId });
    },
  };
}

export interface LiveSession {
  readonly sessionId: string;
  readonly user: SessionUser;
  readonly expiresAt: number;
  readonly via: "cookie" | "bearer";
}

export interface SessionGateOptions {
  readonly publicUrl: string;
  readonly corsOrigins: readonly string[];
  readonly trustedProxies: readonly string[];
  readonly sessions: SessionSettings;
  readonly secret: string;
}

/**
 * Who a request comes from, and whether it may change anything: the session behind its cookie or
 * bearer token, the session cookie itself, and the origin and CSRF rules for state changes.
 */
export class SessionGate {
  readonly cookieName: string;
  private readonly secure: boolean;
  private readonly configuredOrigins: readonly string[];
  private readonly originOfRequest: (req: IncomingMessage) => string | undefined;

  constructor(private readonly options: SessionGateOptions) {
    this.secure = options.publicUrl.startsWith("https:");
    this.cookieName = this.secure ? "__Host-shoal_session" : "shoal_session";
    this.configuredOrigins = [new URL(options.publicUrl).origin, ...options.corsOrigins];
    this.originOfRequest = requestOriginResolver(options.trustedProxies);
  }

  tokenOf(req: { headers: IncomingHttpHeaders }): { token: string; via: "cookie" | "bearer" } | undefined {
    const authorization = req.headers.authorization;
    if (authorization?.startsWith("Bearer ")) return { token: authorization.slice(7).trim(), via: "bearer" };
    const fromCookie = req.headers.cookie ? parseCookies(req.headers.cookie)[this.cookieName] : undefined;
    return fromCookie ? { token: fromCookie, via: "cookie" } : undefined;
  }

  /** The live session behind a token, touching it when due; undefined for an unknown, ended or idle one. */
  async live(lookup: SessionLookup, token: string, via: LiveSession["via"]): Promise<LiveSession | undefined> {
    if (!looksLikeSessionToken(token)) return undefined;
    const sessionId = sessionIdOf(token);
    const found = await lookup.resolve(sessionId);
    const now = Date.now();
    if (!found || !isSessionLive(found.session, now, this.options.sessions)) return undefined;
    if (shouldTouch(found.session, now)) await lookup.touch(sessionId);
    return { sessionId, user: found.user, via, expiresAt: this.endOf(found.session) };
  }

  /**
   * When a live session ends, read again without touching it (an open socket is not activity);
   * undefined for an unknown or ended one.
   */
  async endOfLive(lookup: SessionLookup, sessionId: string): Promise<number | undefined> {
    const found = await lookup.resolve(sessionId);
    return found && isSessionLive(found.session, Date.now(), this.options.sessions) ? this.endOf(found.session) : undefined;
  }

  /** When a session ends if nothing touches it again: its absolute expiry or its idle timeout, whichever comes first. */
  endOf(session: SessionTimes): number {
    return Math.min(session.expiresAt, session.lastSeenAt + this.options.sessions.idleTimeoutSeconds * 1000);
  }

  /**
   * Resolves the request's session, then refuses a cross-site state change (403). A method override is
   * refused (400): the guard judges the method the request names, and @tus/server would apply an
   * `X-HTTP-Method-Override` after it, turning a harmless HEAD into a DELETE or PATCH.
   */
  async authenticate(req: IncomingMessage, lookup: SessionLookup): Promise<LiveSession | undefined> {
    if (req.headers["x-http-method-override"] !== undefined) {
      throw new BadRequestError("X-HTTP-Method-Override is not supported: send the request with its own method.", "method_override_refused");
    }
    const presented = this.tokenOf(req);
    const live = presented ? await this.live(lookup, presented.token, presented.via) : undefined;
    guardStateChange(
      {
        method: req.method ?? "GET",
        origin: req.headers.origin,
        referer: req.headers.referer,
        csrfToken: headerValue(req.headers["x-csrf-token"]),
        session: live && { id: live.sessionId, via: live.via },
      },
      this.allowedOriginsFor(req),
      this.options.secret,
    );
    return live;
  }

  /** Origins a page may call from: the public URL, `CORS_ORIGINS`, and the origin the request itself was addressed to. */
  allowedOriginsFor(req: IncomingMessage): string[] {
    const own = this.originOfRequest(req);
    return own ? [...this.configuredOrigins, own] : [...this.configuredOrigins];
  }

  isAllowedOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    return origin === undefined || this.allowedOriginsFor(req).includes(origin);
  }

  cookieHeader(value: string, maxAgeSeconds: number): string {
    return serializeCookie(this.cookieName, value, { httpOnly: true, sameSite: "lax", secure: this.secure, path: "/", maxAge: maxAgeSeconds });
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

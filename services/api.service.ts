import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseCookies, serialize as serializeCookie } from "cookie";
import helmet from "helmet";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { clientIpResolver } from "../lib/auth/client-ip";
import { guardStateChange } from "../lib/auth/request-guard";
import { isSessionLive, shouldTouch } from "../lib/auth/session-lifetime";
import type { SessionTimes } from "../lib/auth/session-lifetime";
import { csrfTokenFor, looksLikeSessionToken, sessionIdOf } from "../lib/auth/session-tokens";
import type { FrontDoor } from "../lib/http/front-door";
import { sendJson } from "../lib/http/front-door";
import type { GatewayError } from "../lib/http/error-body";
import { buildOpenApiDocument, parseAlias } from "../lib/http/openapi";
import { toErrorResponse } from "../lib/http/error-body";
import type { Runtime } from "../lib/runtime";
import { toMoleculerError } from "../moleculer.config";
import type { GatewayPrometheusReporter, ShoalMeta } from "../moleculer.config";

export interface ApiServiceOptions {
  readonly frontDoor: FrontDoor;
  readonly metrics: GatewayPrometheusReporter | undefined;
}

/** The REST routes: one table, which the OpenAPI document is checked against. */
export const API_ALIASES: Readonly<Record<string, string>> = {
  "GET health": "api.health",
  "GET auth/csrf": "api.csrf",
  "POST auth/register": "users.register",
  "POST auth/login": "users.login",
  "POST auth/logout": "users.logout",
  "GET users/me": "users.me",
  "PUT users/me/password": "users.changePassword",
  "DELETE users/me": "users.deleteMe",
  "GET users/:id": "users.get",
  "GET admin/audit": "site.listAudit",
  "GET openapi.json": "api.openapi",
};

const JSON_BODY_LIMIT = "100kb";
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

interface ResolvedSession {
  session: SessionTimes & { id: string };
  user: { id: string; username: string; role: "user" | "admin" };
}

type GatewayContext = Context<unknown, ShoalMeta>;

/** The HTTP gateway: routes, sessions, CSRF and origin checks, rate limits, security headers, one error shape. Holds no state. */
export function apiService(runtime: Runtime, options: ApiServiceOptions): ServiceSchema {
  const { settings } = runtime;
  const secure = settings.publicUrl.startsWith("https:");
  const sessionCookie = secure ? "__Host-shoal_session" : "shoal_session";
  const allowedOrigins = [new URL(settings.publicUrl).origin, ...settings.corsOrigins];
  const clientIp = clientIpResolver(settings.trustedProxies);

  const securityHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:", "blob:"],
        mediaSrc: ["'self'", "blob:"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    strictTransportSecurity: secure ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    referrerPolicy: { policy: "strict-origin-when-cross-origin" },
    crossOriginResourcePolicy: { policy: "same-origin" },
    xFrameOptions: { action: "deny" },
  });

  function sessionToken(req: IncomingMessage): { token: string; via: "cookie" | "bearer" } | undefined {
    const authorization = req.headers.authorization;
    if (authorization?.startsWith("Bearer ")) return { token: authorization.slice(7).trim(), via: "bearer" };
    const fromCookie = req.headers.cookie ? parseCookies(req.headers.cookie)[sessionCookie] : undefined;
    return fromCookie ? { token: fromCookie, via: "cookie" } : undefined;
  }

  function cookieHeader(value: string, maxAgeSeconds: number): string {
    return serializeCookie(sessionCookie, value, { httpOnly: true, sameSite: "lax", secure, path: "/", maxAge: maxAgeSeconds });
  }

  return {
    name: "api",
    mixins: [ApiGateway],
    settings: {
      server: false,
      use: [securityHeaders],
      cors: settings.corsOrigins.length > 0
        ? {
            origin: [...settings.corsOrigins],
            methods: ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
            allowedHeaders: ["Content-Type", "Authorization", "X-CSRF-Token", "Upload-Length", "Upload-Offset", "Tus-Resumable", "Upload-Metadata"],
            credentials: true,
            maxAge: 600,
          }
        : undefined,
      routes: [
        {
          path: "/api",
          mappingPolicy: "restrict",
          autoAliases: false,
          mergeParams: true,
          authentication: true,
          bodyParsers: {
            json: {
              strict: true,
              limit: JSON_BODY_LIMIT,
              verify(_req: IncomingMessage, _res: ServerResponse, body: Buffer) {
                try {
                  strictUtf8.decode(body);
                } catch {
                  throw Object.assign(new Error("The request body is not valid UTF-8."), { status: 400, type: "encoding.invalid" });
                }
              },
            },
            urlencoded: false,
          },
          aliases: API_ALIASES,

          async onBeforeCall(ctx: GatewayContext, _route: unknown, req: IncomingMessage) {
            ctx.meta.ip = clientIp(req);
            ctx.meta.userAgent = req.headers["user-agent"]?.slice(0, 512);
            if (req.url?.split("?")[0] !== "/health") await runtime.rateLimits.consumeApiRequest(ctx.meta.ip);
          },

          onAfterCall(ctx: GatewayContext, _route: unknown, _req: IncomingMessage, res: ServerResponse, data: unknown) {
            if (ctx.meta.$setSession) {
              res.setHeader("Set-Cookie", cookieHeader(ctx.meta.$setSession.token, ctx.meta.$setSession.maxAgeSeconds));
            } else if (ctx.meta.$clearSession) {
              res.setHeader("Set-Cookie", cookieHeader("", 0));
            }
            res.setHeader("Cache-Control", "no-store");
            return data;
          },
        },
        {
          path: "/metrics",
          mappingPolicy: "restrict",
          autoAliases: false,
          aliases: {
            "GET /"(_req: IncomingMessage, res: ServerResponse) {
              res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
              res.end(options.metrics?.render() ?? "");
            },
          },
        },
      ],
      onError(this: { logger: { error(...args: unknown[]): void } }, req: IncomingMessage, res: ServerResponse, thrown: unknown) {
        // Errors raised in the gateway itself (session, CSRF, rate limits) have not passed the broker's converter.
        const error = toMoleculerError(thrown) as GatewayError;
        const { status, body } = toErrorResponse(error);
        // Body-parser refusals happen before the route's middlewares: add the headers here too.
        securityHeaders(req, res, () => undefined);
        if (status >= 500) this.logger.error(`${req.method} ${req.url} failed:`, error);
        const retryAfter = (error.data as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
        if (status === 429 || status === 503) res.setHeader("Retry-After", String(retryAfter ?? 5));
        res.setHeader("Cache-Control", "no-store");
        sendJson(res, status, body);
      },
    },

    actions: {
      /** 200 when this node can serve, 503 when a dependency it needs is down; one entry per dependency. */
      health: {
        params: { $$strict: true },
        async handler(ctx: GatewayContext) {
          const report = await runtime.health.run();
          ctx.meta.$statusCode = report.status === "down" ? 503 : 200;
          return report;
        },
      },

      /** A CSRF token for the caller's session, to send back as X-CSRF-Token with cookie-authenticated changes. */
      csrf: {
        params: { $$strict: true },
        handler(ctx: GatewayContext) {
          return { csrfToken: csrfTokenFor(runtime.secret, ctx.meta.session?.id ?? "anonymous") };
        },
      },

      /** This API as an OpenAPI 3 document, generated from API_ALIASES and the routed actions' params. */
      openapi: {
        params: { $$strict: true },
        handler(ctx: GatewayContext) {
          const known = new Map(ctx.broker.registry.getActionList({ skipInternal: true }).map((item) => [item.name, item.action]));
          const routes = Object.entries(API_ALIASES).map(([alias, action]) => {
            const schema = known.get(action);
            return { ...parseAlias(alias), action, params: schema?.params, description: schema?.description as string | undefined };
          });
          return buildOpenApiDocument({ routes, title: "Shoal API", version: "0.1.0", serverUrl: settings.publicUrl, sessionCookie });
        },
      },
    },

    methods: {
      /** Resolves the session (cookie or bearer), then refuses cross-site state changes. */
      async authenticate(ctx: GatewayContext, _route: unknown, req: IncomingMessage) {
        const presented = sessionToken(req);
        if (presented && looksLikeSessionToken(presented.token)) {
          const sessionId = sessionIdOf(presented.token);
          const found = await ctx.call<ResolvedSession | null, { sessionId: string }>("users.resolveSession", { sessionId });
          const now = Date.now();
          if (found && isSessionLive(found.session, now, settings.sessions)) {
            ctx.meta.session = { id: sessionId, via: presented.via };
            ctx.meta.user = found.user;
            if (shouldTouch(found.session, now)) await ctx.call("users.touchSession", { sessionId });
          }
        }
        guardStateChange(
          {
            method: req.method ?? "GET",
            origin: req.headers.origin,
            referer: req.headers.referer,
            csrfToken: headerValue(req.headers["x-csrf-token"]),
            session: ctx.meta.session,
          },
          allowedOrigins,
          runtime.secret,
        );
        return ctx.meta.user ?? null;
      },
    },

    started() {
      options.frontDoor.serve((this as unknown as { express(): (req: IncomingMessage, res: ServerResponse) => void }).express());
    },

    stopped() {
      options.frontDoor.serve(undefined);
    },
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

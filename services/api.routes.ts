import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "moleculer";
import type { SessionGate } from "../lib/auth/session-gate";
import type { RateLimits } from "../lib/security/rate-limits";
import type { ShoalMeta } from "../moleculer.config";

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
  "GET media": "media.list",
  "GET media/:id": "media.get",
  "PATCH media/:id": "media.update",
  "DELETE media/:id": "media.delete",
  "GET uploads/:id/media": "api.uploadResult",
  "POST admin/media/:id/reprocess": "media.reprocess",
  "GET openapi.json": "api.openapi",
};

export { UPLOAD_ID_PATTERN } from "../lib/uploads/upload-id";

/** What tus answers carry besides the shared ones, which a page on another allowed origin may read. */
const TUS_EXPOSED_HEADERS = ["Upload-Expires", "Upload-Metadata", "Tus-Version", "Tus-Extension", "Tus-Max-Size"];

const JSON_BODY_LIMIT = "100kb";
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

type GatewayContext = Context<unknown, ShoalMeta>;
export type GatewayRequest = IncomingMessage & { $ctx: GatewayContext; originalUrl?: string };

export interface ApiRouteHandlers {
  readonly gate: SessionGate;
  readonly clientIp: (req: IncomingMessage) => string;
  readonly rateLimits: RateLimits;
  readonly corsOrigins: readonly string[];
  readonly tus: (req: IncomingMessage, res: ServerResponse) => void;
  readonly multipart: (req: GatewayRequest, res: ServerResponse) => Promise<void>;
  readonly metrics: (req: IncomingMessage, res: ServerResponse) => void;
}

/** moleculer-web's routes: the JSON API, the tus and multipart upload routes, and /metrics. */
export function apiRoutes(handlers: ApiRouteHandlers): object[] {
  const { gate } = handlers;
  async function identifyClient(ctx: GatewayContext, _route: unknown, req: IncomingMessage): Promise<void> {
    ctx.meta.ip = handlers.clientIp(req);
    ctx.meta.userAgent = req.headers["user-agent"]?.slice(0, 512);
    if (!req.url?.split("?")[0]?.startsWith("/health")) await handlers.rateLimits.consumeApiRequest(ctx.meta.ip);
  }
  const cors =
    handlers.corsOrigins.length > 0
      ? {
          origin: [...handlers.corsOrigins],
          methods: ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
          allowedHeaders: ["Content-Type", "Authorization", "X-CSRF-Token", "Upload-Length", "Upload-Offset", "Tus-Resumable", "Upload-Metadata"],
          exposedHeaders: ["Location", "Upload-Offset", "Upload-Length", "Tus-Resumable", "Shoal-Media-Id"],
          credentials: true,
          maxAge: 600,
        }
      : undefined;
  const uploadRoute = {
    mappingPolicy: "restrict",
    autoAliases: false,
    authentication: true,
    cors,
    // Upload bodies are streamed to storage as they arrive, never parsed or buffered.
    bodyParsers: false,
    onBeforeCall: identifyClient,
  };
  const tusHandler = (req: GatewayRequest, res: ServerResponse) => {
    // moleculer-web strips the route's path from req.url; tus routes by the full path.
    req.url = req.originalUrl ?? req.url;
    handlers.tus(req, res);
  };

  return [
    {
      path: "/api",
      mappingPolicy: "restrict",
      autoAliases: false,
      mergeParams: true,
      authentication: true,
      cors,
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
      onBeforeCall: identifyClient,
      onAfterCall(ctx: GatewayContext, _route: unknown, _req: IncomingMessage, res: ServerResponse, data: unknown) {
        if (ctx.meta.$setSession) res.setHeader("Set-Cookie", gate.cookieHeader(ctx.meta.$setSession.token, ctx.meta.$setSession.maxAgeSeconds));
        else if (ctx.meta.$clearSession) res.setHeader("Set-Cookie", gate.cookieHeader("", 0));
        res.setHeader("Cache-Control", "no-store");
        return data;
      },
    },
    {
      ...uploadRoute,
      path: "/api/uploads",
      // CORS for tus comes from here alone (CORS_ORIGINS): the tus handler drops the headers @tus/server would add.
      cors: cors && { ...cors, exposedHeaders: [...cors.exposedHeaders, ...TUS_EXPOSED_HEADERS] },
      aliases: {
        "POST /": tusHandler,
        "OPTIONS /": tusHandler,
        "HEAD /:id": tusHandler,
        "PATCH /:id": tusHandler,
        "DELETE /:id": tusHandler,
        "OPTIONS /:id": tusHandler,
      },
    },
    {
      ...uploadRoute,
      path: "/api/media",
      aliases: {
        "POST /"(req: GatewayRequest, res: ServerResponse, next: (error?: unknown) => void) {
          // moleculer-web does not await function aliases: failures must go through next() to reach onError.
          handlers.multipart(req, res).catch(next);
        },
      },
    },
    {
      path: "/metrics",
      mappingPolicy: "restrict",
      autoAliases: false,
      // A scraper is never rate-limited: it is refused or let in by METRICS_TOKEN alone.
      aliases: { "GET /": handlers.metrics },
    },
  ];
}

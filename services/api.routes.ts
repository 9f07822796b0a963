import type { IncomingMessage, ServerResponse } from "node:http";
import { Errors } from "moleculer";
import type { Context } from "moleculer";
import type { SessionGate } from "../lib/auth/session-gate";
import { findForbiddenKey } from "../lib/security/forbidden-keys";
import { JSON_CONTENT_TYPE, matchesIfNoneMatch, renderJsonAnswer, REVALIDATED_ACTIONS, REVALIDATED_CACHE_CONTROL, UNCACHED_CACHE_CONTROL } from "../lib/http/revalidation";
import { maintenanceRefusal } from "../lib/ops/maintenance";
import type { MaintenanceSwitch } from "../lib/ops/maintenance";
import type { RateLimits } from "../lib/security/rate-limits";
import type { ItemRead } from "../lib/stats/view-stores";
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
  "GET admin/backups": "backup.list",
  "POST admin/backups": "backup.start",
  "GET admin/maintenance": "api.maintenance",
  "PUT admin/maintenance": "api.setMaintenance",
  "GET admin/stats": "site.statsSeries",
  "GET admin/stats/summary": "site.statsSummary",
  "GET me/stats": "site.myStats",
  "GET media": "media.list",
  "GET media/:id": "media.get",
  "PATCH media/:id": "media.update",
  "DELETE media/:id": "media.delete",
  "GET uploads/:id/media": "api.uploadResult",
  "POST admin/media/:id/reprocess": "media.reprocess",
  "GET openapi.json": "api.openapi",
};

export { UPLOAD_ID_PATTERN } from "../lib/uploads/upload-id";

const JSON_BODY_LIMIT = "100kb";
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

type GatewayContext = Context<unknown, ShoalMeta>;

/** The first `__proto__` or `constructor` key in a JSON text; malformed JSON is left to the parser to refuse. */
function forbiddenKeyIn(text: string): string | undefined {
  // Parsing twice only when a key might be one (escapes such as \u005f could spell it too).
  if (!text.includes("\\u") && !/"(?:__proto__|constructor)"/.test(text)) return undefined;
  try {
    return findForbiddenKey(JSON.parse(text));
  } catch {
    return undefined;
  }
}
export type GatewayRequest = IncomingMessage & { $ctx: GatewayContext; originalUrl?: string };

export interface ApiRouteHandlers {
  readonly gate: SessionGate;
  readonly clientIp: (req: IncomingMessage) => string;
  readonly rateLimits: RateLimits;
  readonly tus: (req: IncomingMessage, res: ServerResponse) => void;
  readonly multipart: (req: GatewayRequest, res: ServerResponse) => Promise<void>;
  readonly metrics: (req: IncomingMessage, res: ServerResponse) => void;
  /** Counts a read of an item (GET /api/media/:id) as a view; never throws. */
  readonly recordView: (read: ItemRead) => Promise<void>;
  /** While it is on, changes answer 503 (lib/ops/maintenance.ts). */
  readonly maintenance: MaintenanceSwitch;
}

/** moleculer-web's routes: the JSON API, the tus and multipart upload routes, and /metrics. */
export function apiRoutes(handlers: ApiRouteHandlers): object[] {
  const { gate } = handlers;
  async function identifyClient(ctx: GatewayContext, _route: unknown, req: IncomingMessage & { $action?: { name?: string } }): Promise<void> {
    const refusal = maintenanceRefusal(await handlers.maintenance.current(), req.method, req.$action?.name);
    if (refusal !== undefined) throw refusal;
    ctx.meta.ip = handlers.clientIp(req);
    ctx.meta.userAgent = req.headers["user-agent"]?.slice(0, 512);
    if (!req.url?.split("?")[0]?.startsWith("/health")) await handlers.rateLimits.consumeApiRequest(ctx.meta.ip);
  }
  const uploadRoute = {
    mappingPolicy: "restrict",
    autoAliases: false,
    authentication: true,
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
      bodyParsers: {
        json: {
          strict: true,
          limit: JSON_BODY_LIMIT,
          verify(_req: IncomingMessage, _res: ServerResponse, body: Buffer) {
            let text: string;
            try {
              text = strictUtf8.decode(body);
            } catch {
              throw Object.assign(new Error("The request body is not valid UTF-8."), { status: 400, type: "encoding.invalid" });
            }
            // Merged into params with Object.assign, `{"__proto__": null}` would leave no trace for the actions to refuse.
            const forbidden = forbiddenKeyIn(text);
            if (forbidden !== undefined) {
              // A Moleculer error, which moleculer-web passes on with its data (a plain one would lose the field).
              throw new Errors.ValidationError("The body names a reserved key.", "VALIDATION_ERROR", [
                { field: forbidden, message: "is not allowed as a field name", type: "forbidden" },
              ]);
            }
          },
        },
        urlencoded: false,
      },
      aliases: API_ALIASES,
      onBeforeCall: identifyClient,
      async onAfterCall(ctx: GatewayContext, _route: unknown, req: IncomingMessage & { $action?: { name?: string } }, res: ServerResponse, data: unknown) {
        // Here rather than in the action, so that answers from the cache and 304s count too.
        if (req.method === "GET" && req.$action?.name === "media.get") {
          const { user, session, ip, userAgent } = ctx.meta;
          await handlers.recordView({ callerId: user?.id, sessionId: session?.id, ip, userAgent, answer: data });
        }
        if (ctx.meta.$setSession) res.setHeader("Set-Cookie", gate.cookieHeader(ctx.meta.$setSession.token, ctx.meta.$setSession.maxAgeSeconds));
        else if (ctx.meta.$clearSession) res.setHeader("Set-Cookie", gate.cookieHeader("", 0));
        if (req.method === "GET" && REVALIDATED_ACTIONS.has(req.$action?.name ?? "") && typeof data === "object" && data !== null) {
          const answer = renderJsonAnswer(data);
          res.setHeader("Cache-Control", REVALIDATED_CACHE_CONTROL);
          res.setHeader("ETag", answer.etag);
          if (matchesIfNoneMatch(req.headers["if-none-match"], answer.etag)) {
            // No body: the browser still has it.
            ctx.meta.$statusCode = 304;
            return null;
          }
          // The bytes the ETag was computed over, sent as they are rather than serialised again.
          ctx.meta.$responseType = JSON_CONTENT_TYPE;
          return answer.body;
        } else {
          res.setHeader("Cache-Control", UNCACHED_CACHE_CONTROL);
        }
        return data;
      },
    },
    {
      ...uploadRoute,
      path: "/api/uploads",
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

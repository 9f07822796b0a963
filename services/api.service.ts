import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseCookies, serialize as serializeCookie } from "cookie";
import helmet from "helmet";
import { nanoid } from "nanoid";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { clientIpResolver } from "../lib/auth/client-ip";
import { guardStateChange } from "../lib/auth/request-guard";
import { isSessionLive, shouldTouch } from "../lib/auth/session-lifetime";
import type { SessionTimes } from "../lib/auth/session-lifetime";
import { csrfTokenFor, looksLikeSessionToken, sessionIdOf } from "../lib/auth/session-tokens";
import { createFileServer } from "../lib/http/file-server";
import type { FrontDoor } from "../lib/http/front-door";
import { sendJson } from "../lib/http/front-door";
import type { GatewayError } from "../lib/http/error-body";
import { createWebApp } from "../lib/http/web-app";
import { buildOpenApiDocument, parseAlias } from "../lib/http/openapi";
import { toErrorResponse } from "../lib/http/error-body";
import { AppError, NotFoundError, UnauthenticatedError } from "../lib/errors";
import { PROGRESS_EVENT, ProgressHub } from "../lib/realtime/progress-hub";
import type { ProgressUpdate } from "../lib/realtime/progress-hub";
import type { Runtime } from "../lib/runtime";
import { LocalStorage } from "../lib/storage/local-storage";
import { FILES_PATH_PREFIX } from "../lib/storage/signed-url";
import { acceptUpload } from "../lib/uploads/accept-upload";
import type { UploadCatalogue } from "../lib/uploads/accept-upload";
import { tooLarge } from "../lib/uploads/ingest";
import { receiveMultipartFile } from "../lib/uploads/multipart";
import { TusUploads } from "../lib/uploads/tus-uploads";
import type { UploadOutcome } from "../lib/uploads/tus-uploads";
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
  "GET media": "media.list",
  "GET media/:id": "media.get",
  "PATCH media/:id": "media.update",
  "DELETE media/:id": "media.delete",
  "GET uploads/:id/media": "api.uploadResult",
  "POST admin/media/:id/reprocess": "media.reprocess",
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
  const mediaOrigins = mediaOriginsOf(settings);

  const securityHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:", "blob:", ...mediaOrigins],
        mediaSrc: ["'self'", "blob:", ...mediaOrigins],
        connectSrc: ["'self'", ...mediaOrigins],
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

  function sessionToken(req: { headers: IncomingMessage["headers"] }): { token: string; via: "cookie" | "bearer" } | undefined {
    const authorization = req.headers.authorization;
    if (authorization?.startsWith("Bearer ")) return { token: authorization.slice(7).trim(), via: "bearer" };
    const fromCookie = req.headers.cookie ? parseCookies(req.headers.cookie)[sessionCookie] : undefined;
    return fromCookie ? { token: fromCookie, via: "cookie" } : undefined;
  }

  /** The live session behind a token, touching it when due; undefined for an unknown, ended or idle one. */
  async function liveSession(
    call: <T>(action: string, params: object) => Promise<T>,
    token: string,
  ): Promise<{ sessionId: string; user: ResolvedSession["user"] } | undefined> {
    if (!looksLikeSessionToken(token)) return undefined;
    const sessionId = sessionIdOf(token);
    const found = await call<ResolvedSession | null>("users.resolveSession", { sessionId });
    const now = Date.now();
    if (!found || !isSessionLive(found.session, now, settings.sessions)) return undefined;
    if (shouldTouch(found.session, now)) await call("users.touchSession", { sessionId });
    return { sessionId, user: found.user };
  }

  function cookieHeader(value: string, maxAgeSeconds: number): string {
    return serializeCookie(sessionCookie, value, { httpOnly: true, sameSite: "lax", secure, path: "/", maxAge: maxAgeSeconds });
  }

  async function identifyClient(ctx: GatewayContext, _route: unknown, req: IncomingMessage): Promise<void> {
    ctx.meta.ip = clientIp(req);
    ctx.meta.userAgent = req.headers["user-agent"]?.slice(0, 512);
    if (req.url?.split("?")[0] !== "/health") await runtime.rateLimits.consumeApiRequest(ctx.meta.ip);
  }

  let tus: TusUploads | undefined;
  let progressHub: ProgressHub | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  const tusHandler = (req: IncomingMessage & { originalUrl?: string }, res: ServerResponse) => {
    // moleculer-web strips the route's path from req.url; tus routes by the full path.
    req.url = req.originalUrl ?? req.url;
    tus?.handle(req, res);
  };
  const uploadRoute = {
    mappingPolicy: "restrict",
    autoAliases: false,
    authentication: true,
    // Upload bodies are streamed to storage as they arrive, never parsed or buffered.
    bodyParsers: false,
    onBeforeCall: identifyClient,
  };

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

          onBeforeCall: identifyClient,

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
            "POST /"(
              this: { uploadMultipart(req: IncomingMessage, res: ServerResponse): Promise<void> },
              req: IncomingMessage,
              res: ServerResponse,
              next: (error?: unknown) => void,
            ) {
              // moleculer-web does not await function aliases: failures must go through next() to reach onError.
              this.uploadMultipart(req, res).catch(next);
            },
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

      /** What a finished tus upload became: the media item, or the error that refused it. */
      uploadResult: {
        params: { $$strict: true, id: { type: "string", pattern: /^u[A-Za-z0-9_-]{21}$/, messages: { stringPattern: "is not an upload id" } } },
        async handler(ctx: Context<{ id: string }, ShoalMeta>) {
          const owner = ctx.meta.user;
          if (!owner) throw new UnauthenticatedError();
          const recorded = await runtime.uploadOutcomes.recall(ctx.params.id);
          const outcome = recorded ? (JSON.parse(recorded) as UploadOutcome & { ownerId: string }) : undefined;
          if (!outcome || outcome.ownerId !== owner.id) throw new NotFoundError("finished upload");
          if ("error" in outcome) throw new AppError(outcome.error.status, outcome.error.code, outcome.error.message);
          return ctx.call("media.get", { id: outcome.mediaId });
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

    events: {
      /** Processing progress from any worker: pushed to the owner's sockets, on whichever api node they are connected. */
      [PROGRESS_EVENT]: {
        params: { mediaId: "string", ownerId: "string", stage: "string", percent: "number" },
        async handler(ctx: Context<ProgressUpdate>) {
          const hub = progressHub;
          if (!hub) return;
          hub.publish(ctx.params);
          const { stage, mediaId, ownerId } = ctx.params;
          if (stage !== "ready" && stage !== "failed") return;
          // As the owner sees it (originalUrl included), from the catalogue.
          const { media } = await ctx.call<{ media: { reason: string | null } }, { id: string }>(
            "media.get",
            { id: mediaId },
            { meta: { user: { id: ownerId, role: "user", username: "" } } },
          );
          if (stage === "ready") hub.ready(ownerId, media);
          else hub.failed(ownerId, mediaId, media.reason ?? "processing_error");
        },
      },
    },

    created() {
      const broker = this.broker;
      progressHub = new ProgressHub(options.frontDoor.server, {
        allowedOrigins,
        redis: runtime.redis,
        async authenticate(handshake) {
          const fromAuth = typeof handshake.auth.token === "string" ? handshake.auth.token : undefined;
          const token = fromAuth ?? sessionToken(handshake)?.token;
          if (!token) return undefined;
          return (await liveSession((action, params) => broker.call(action, params), token))?.user.id;
        },
      });
      const catalogue: UploadCatalogue<unknown> = {
        reserveQuota: (reservation) => broker.call("users.reserveQuota", reservation),
        commitReservation: (reservationId, bytes) => broker.call("users.commitReservation", { reservationId, bytes }),
        releaseReservation: (reservationId) => broker.call("users.releaseReservation", { reservationId }),
        releaseQuota: (userId, bytes) => broker.call("users.releaseQuota", { userId, bytes }),
        createMedia: (media) => broker.call("media.create", media),
      };
      const uploadDependencies = { storage: runtime.storage, catalogue, limits: settings.uploads };
      const outcomeTtlMs = settings.uploads.expirySeconds * 1000;
      this.uploadDependencies = uploadDependencies;
      tus = new TusUploads({
        path: "/api/uploads",
        uploads: settings.uploads,
        storage: settings.storage,
        redis: runtime.redis,
        hooks: {
          ownerOf: (req) => (req as { $ctx?: GatewayContext }).$ctx?.meta.user,
          async beforeCreate(owner, reservation) {
            await runtime.rateLimits.consumeUpload(owner.id);
            await catalogue.reserveQuota({ ...reservation, userId: owner.id });
          },
          async accept(owner, upload, content) {
            const metadata = upload.metadata ?? {};
            const { media } = await acceptUpload(
              content,
              {
                ownerId: owner.id,
                reservationId: String(metadata.reservationId),
                title: metadata.title?.slice(0, 200) || undefined,
                originalName: metadata.filename?.slice(0, 255) || undefined,
                declaredMime: metadata.filetype?.slice(0, 100) || undefined,
              },
              uploadDependencies,
            );
            return { mediaId: (media as { id: string }).id };
          },
          release: (reservationId) => catalogue.releaseReservation(reservationId),
          received: (ownerId, progress) => progressHub?.uploadProgress(ownerId, progress),
          recordOutcome: (uploadId, ownerId, outcome) =>
            runtime.uploadOutcomes.remember(uploadId, JSON.stringify({ ownerId, ...outcome }), outcomeTtlMs),
        },
      });
    },

    methods: {
      /** POST /api/media: one file as multipart/form-data, streamed through the same checks as a tus upload. */
      async uploadMultipart(req: IncomingMessage & { $ctx: GatewayContext }, res: ServerResponse) {
        const owner = req.$ctx.meta.user;
        if (!owner) throw new UnauthenticatedError("Sign in to upload.");
        await runtime.rateLimits.consumeUpload(owner.id);
        const largest = Math.max(...Object.values(settings.uploads.maxBytes));
        const declared = Number(req.headers["content-length"]) || 0;
        // Allow for the form's own framing around the file.
        if (declared > largest + 64 * 1024) throw tooLarge(undefined, largest);
        const reservationId = `form:${nanoid()}`;
        const dependencies = (this as unknown as { uploadDependencies: Parameters<typeof acceptUpload>[2] }).uploadDependencies;
        await dependencies.catalogue.reserveQuota({ reservationId, userId: owner.id, bytes: declared, expiresAt: Date.now() + 3600_000 });
        const result = await receiveMultipartFile(req, largest, (file) =>
          acceptUpload(
            file.stream,
            {
              ownerId: owner.id,
              reservationId,
              title: file.fields.title?.slice(0, 200) || undefined,
              originalName: file.filename?.slice(0, 255) || undefined,
              declaredMime: file.mimeType?.slice(0, 100) || undefined,
            },
            dependencies,
          ),
        ).catch(async (error: unknown) => {
          await dependencies.catalogue.releaseReservation(reservationId).catch(() => undefined);
          throw error;
        });
        securityHeaders(req, res, () => undefined);
        res.setHeader("Cache-Control", "no-store");
        sendJson(res, result.duplicate ? 200 : 201, result);
      },

      /** Resolves the session (cookie or bearer), then refuses cross-site state changes. */
      async authenticate(ctx: GatewayContext, _route: unknown, req: IncomingMessage) {
        const presented = sessionToken(req);
        const live = presented && (await liveSession((action, params) => ctx.call(action, params), presented.token));
        if (presented && live) {
          ctx.meta.session = { id: live.sessionId, via: presented.via };
          ctx.meta.user = live.user;
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
      sweeper = setInterval(() => {
        tus?.sweepExpired().catch((error: Error) => this.logger.warn(`sweeping expired uploads failed: ${error.message}`));
      }, 15 * 60_000);
      sweeper.unref();
      const gateway = (this as unknown as { express(): (req: IncomingMessage, res: ServerResponse) => void }).express();
      // Embedded objects are served by signed URL straight from disk, beside the API rather than through it.
      const files =
        runtime.storage instanceof LocalStorage ? createFileServer({ storage: runtime.storage, secret: runtime.secret }) : undefined;
      // The web app (dist/web): GET and HEAD outside /api, /files, /socket.io and /metrics, under the same security headers.
      const web = createWebApp();
      if (!web.root) this.logger.warn("The web app is not built (dist/web): run `npm run build:web`.");
      options.frontDoor.serve((req, res) => {
        if (files && req.url?.startsWith(FILES_PATH_PREFIX)) files(req, res);
        else if (web.handles(req)) securityHeaders(req, res, () => web.serve(req, res));
        else gateway(req, res);
      });
    },

    async stopped() {
      clearInterval(sweeper);
      await progressHub?.close();
      tus?.close();
      options.frontDoor.serve(undefined);
    },
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Where browsers fetch media bytes from besides this origin: the S3 endpoint (presigned URLs) and a CDN for public items. */
function mediaOriginsOf(settings: Runtime["settings"]): string[] {
  const origins = new Set<string>();
  if (settings.storage.kind === "s3") {
    const { endpoint, bucket, region, forcePathStyle } = settings.storage;
    if (endpoint) {
      const url = new URL(endpoint);
      origins.add(forcePathStyle ? url.origin : `${url.protocol}//${bucket}.${url.host}`);
    } else {
      origins.add(`https://${bucket}.s3.${region}.amazonaws.com`);
    }
  }
  if (settings.delivery.publicBaseUrl) origins.add(new URL(settings.delivery.publicBaseUrl).origin);
  return [...origins];
}

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { clientIpResolver } from "../lib/auth/client-ip";
import { SessionGate, sessionLookupThrough } from "../lib/auth/session-gate";
import { csrfTokenFor } from "../lib/auth/session-tokens";
import { UnauthenticatedError } from "../lib/errors";
import { publicHealthView } from "../lib/health";
import { answerError } from "../lib/http/error-body";
import type { GatewayError } from "../lib/http/error-body";
import { corsFor } from "../lib/http/cors";
import { createFileServer } from "../lib/http/file-server";
import type { FrontDoor } from "../lib/http/front-door";
import { sendJson } from "../lib/http/front-door";
import { metricsOnPublicPort } from "../lib/http/metrics-access";
import { routesOfAliases } from "../lib/http/alias-routes";
import { buildOpenApiDocument } from "../lib/http/openapi";
import { securityHeaders } from "../lib/http/security-headers";
import { createWebApp } from "../lib/http/web-app";
import { MaintenanceSwitch, maintenanceStoreFor } from "../lib/ops/maintenance";
import { ProgressHub } from "../lib/realtime/progress-hub";
import type { MediaOutcome } from "../lib/realtime/progress-hub";
import { socketSessionsThrough } from "../lib/realtime/socket-sessions";
import type { Runtime } from "../lib/runtime";
import { LocalStorage } from "../lib/storage/local-storage";
import { FILES_PATH_PREFIX } from "../lib/storage/signed-url";
import { UploadGateway, uploadCatalogueThrough } from "../lib/uploads/upload-gateway";
import { viewRecorder, viewStoreOf } from "../lib/stats/view-stores";
import { maintenanceMixin } from "../mixins/maintenance.mixin";
import { toMoleculerError } from "../moleculer.config";
import type { ShoalMeta } from "../moleculer.config";
import { apiRoutes, API_ALIASES, UPLOAD_ID_PATTERN } from "./api.routes";
import { PROGRESS_EVENT, SESSIONS_ENDED_EVENT } from "../lib/service-contracts";
import type { ProgressUpdate, SessionsEnded } from "../lib/service-contracts";

export { API_ALIASES } from "./api.routes";

export interface ApiServiceOptions {
  readonly frontDoor: FrontDoor;
  /** Prometheus text of this node's metrics. */
  readonly renderMetrics: () => string;
  /** Where browsers reach Shoal (the setting, with the bound port when PORT=0 left it open). */
  readonly publicUrl: string;
}

type GatewayContext = Context<unknown, ShoalMeta>;

/** The HTTP gateway: routes, sessions, CSRF and origin checks, rate limits, security headers, one error shape. Holds no state. */
export function apiService(runtime: Runtime, options: ApiServiceOptions): ServiceSchema {
  const settings = { ...runtime.settings, publicUrl: options.publicUrl };
  const gate = new SessionGate({ ...settings, secret: runtime.secret });
  const headers = securityHeaders(settings);
  // A view that cannot be counted (Redis unreachable) is logged; the read itself is still answered.
  let recordViewFailed = (_error: Error): void => undefined;

  let uploads: UploadGateway | undefined;
  let progressHub: ProgressHub | undefined;
  const maintenance = new MaintenanceSwitch(maintenanceStoreFor(runtime.redis));

  return {
    name: "api",
    mixins: [ApiGateway, maintenanceMixin(maintenance)],
    settings: {
      server: false,
      // Not a line for every request and the action it calls at the default level: LOG_LEVEL=debug shows them.
      logRequest: "debug", logResponse: "debug",
      // CORS for CORS_ORIGINS (lib/http/cors.ts; the tus handler drops the headers @tus/server would add).
      use: [headers, corsFor(settings.corsOrigins)],
      routes: apiRoutes({
        gate,
        clientIp: clientIpResolver(settings.trustedProxies),
        rateLimits: runtime.rateLimits,
        tus: (req, res) => uploads?.handleTus(req, res),
        multipart: async (req, res) => {
          const { status, body } = await uploads!.receiveMultipart(req, req.$ctx.meta.user);
          headers(req, res, () => undefined);
          res.setHeader("Cache-Control", "no-store");
          sendJson(res, status, body);
        },
        metrics: metricsOnPublicPort(settings.metrics.token, options.renderMetrics),
        recordView: viewRecorder(viewStoreOf(runtime), runtime.secret, (error) => recordViewFailed(error)),
        maintenance,
      }),
      onError(this: { logger: { error(...args: unknown[]): void } }, req: IncomingMessage & { $ctx?: GatewayContext }, res: ServerResponse, thrown: unknown) {
        // Gateway errors (session, CSRF, rate limits, body parser) have not passed the broker's converter, nor the headers' middleware.
        const error = toMoleculerError(thrown) as GatewayError;
        answerError(req, res, error, { headers, logError: (message, cause) => this.logger.error(message, cause), requestId: req.$ctx?.requestID ?? undefined });
      },
    },

    actions: {
      /** Readiness: 200 when this node can serve, 503 when a dependency it needs is down. Details for admins only. */
      health: {
        params: { $$strict: true },
        async handler(ctx: GatewayContext) {
          const report = await runtime.health.run();
          ctx.meta.$statusCode = report.status === "ok" || report.status === "degraded" ? 200 : 503;
          return ctx.meta.user?.role === "admin" ? report : publicHealthView(report);
        },
      },

      /** What a finished tus upload became: the media item, or the error that refused it. */
      uploadResult: {
        params: { $$strict: true, id: { type: "string", pattern: UPLOAD_ID_PATTERN, messages: { stringPattern: "is not an upload id" } } },
        async handler(ctx: Context<{ id: string }, ShoalMeta>) {
          const owner = ctx.meta.user;
          if (!owner) throw new UnauthenticatedError();
          return ctx.call("media.get", { id: await uploads!.outcomeOf(ctx.params.id, owner.id) });
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
          const routes = routesOfAliases(API_ALIASES, (name) => known.get(name));
          return buildOpenApiDocument({ routes, title: "Shoal API", version: "0.1.0", serverUrl: settings.publicUrl, sessionCookie: gate.cookieName });
        },
      },
    },

    events: {
      /** Processing progress from any worker: pushed to the owner's sockets, on whichever api node they are connected. */
      [PROGRESS_EVENT]: {
        params: { mediaId: "string", ownerId: "string", stage: "string", percent: "number" },
        async handler(ctx: Context<ProgressUpdate>) {
          // The finished item as its owner sees it (originalUrl included), from the catalogue.
          const asOwner = (ownerId: string) => ({ meta: { user: { id: ownerId, role: "user", username: "" } } });
          await progressHub?.relay(ctx.params, async (id, ownerId) => (await ctx.call<{ media: MediaOutcome }, { id: string }>("media.get", { id }, asOwner(ownerId))).media);
        },
      },

      /** Sessions ended (sign-out, password change, deletion, role change): their sockets on this node go too. */
      [SESSIONS_ENDED_EVENT]: {
        params: { userId: "string", sessionIds: { type: "array", items: "string" }, reason: "string" },
        handler: (ctx: Context<SessionsEnded>) => progressHub?.endSessions(ctx.params.sessionIds),
      },
    },

    created() {
      // No route has auto aliases. moleculer-web would still regenerate them 500 ms after every `$services.changed`
      // (a node's own services stopping included), on a timer that keeps a stopped node's process alive until then.
      Object.assign(this, { regenerateAllAutoAliases: () => undefined });
      const broker = this.broker;
      recordViewFailed = (error) => this.logger.warn(`a view could not be counted: ${error.message}`);
      progressHub = new ProgressHub(options.frontDoor.server, {
        isAllowedOrigin: (req) => gate.isAllowedOrigin(req),
        redis: runtime.redis,
        sessions: socketSessionsThrough(gate, sessionLookupThrough((action, params) => broker.call(action, params))),
      });
      uploads = new UploadGateway({
        uploads: settings.uploads,
        storageSettings: settings.storage,
        storage: runtime.storage,
        redis: runtime.redis,
        outcomes: runtime.uploadOutcomes,
        consumeUpload: (ownerId) => runtime.rateLimits.consumeUpload(ownerId),
        catalogue: uploadCatalogueThrough((action, params) => broker.call(action, params)),
        ownerOf: (req) => (req as { $ctx?: GatewayContext }).$ctx?.meta.user,
        log: this.logger,
        requestIdOf: (req) => (req as { $ctx?: GatewayContext }).$ctx?.requestID ?? undefined,
        // Not required: every node shares the bucket, so a failing store would take all of them out of rotation at once.
        registerHealthCheck: (name, check) => runtime.health.register(name, check, { required: false }),
        received: (ownerId, progress) => progressHub?.uploadProgress(ownerId, progress),
      });
    },

    methods: {
      /** Resolves the session (cookie or bearer), then refuses cross-site state changes. */
      async authenticate(ctx: GatewayContext, _route: unknown, req: IncomingMessage) {
        const live = await gate.authenticate(req, sessionLookupThrough((action, params) => ctx.call(action, params)));
        if (live) {
          ctx.meta.session = { id: live.sessionId, via: live.via };
          ctx.meta.user = live.user;
        }
        return ctx.meta.user ?? null;
      },
    },

    started() {
      uploads?.sweepExpiredOn(runtime.periodicTasks);
      const gateway = (this as unknown as { express(): (req: IncomingMessage, res: ServerResponse) => void }).express();
      // Embedded objects are served by signed URL straight from disk, beside the API rather than through it.
      const files = runtime.storage instanceof LocalStorage ? createFileServer({ storage: runtime.storage, secret: runtime.secret }) : undefined;
      // The web app (dist/web): GET and HEAD outside /api, /files, /socket.io and /metrics, under the same security headers.
      const web = createWebApp({ sourceMaps: settings.webSourceMaps });
      if (!web.root) this.logger.warn("The web app is not built (dist/web): run `npm run build:web`.");
      options.frontDoor.serve((req, res) => {
        if (files && req.url?.startsWith(FILES_PATH_PREFIX)) files(req, res);
        else if (web.handles(req)) headers(req, res, () => web.serve(req, res));
        else gateway(req, res);
      });
    },

    async stopped() {
      await progressHub?.close();
      uploads?.close();
      options.frontDoor.serve(undefined);
    },
  };
}

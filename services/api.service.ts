import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import type { FrontDoor } from "../lib/http/front-door";
import { sendJson } from "../lib/http/front-door";
import type { GatewayError } from "../lib/http/error-body";
import { toErrorResponse } from "../lib/http/error-body";
import type { Runtime } from "../lib/runtime";
import type { GatewayPrometheusReporter, ShoalMeta } from "../moleculer.config";

export interface ApiServiceOptions {
  readonly frontDoor: FrontDoor;
  readonly metrics: GatewayPrometheusReporter | undefined;
}

/** The HTTP gateway: routes, body limits, one error shape. Holds no state of its own. */
export function apiService(runtime: Runtime, options: ApiServiceOptions): ServiceSchema {
  return {
    name: "api",
    mixins: [ApiGateway],
    settings: {
      server: false,
      routes: [
        {
          path: "/api",
          mappingPolicy: "restrict",
          autoAliases: false,
          mergeParams: true,
          bodyParsers: { json: { strict: true, limit: "100kb" }, urlencoded: false },
          aliases: {
            "GET health": "api.health",
            "GET users/:id": "users.get",
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
      onError(this: { logger: { error(...args: unknown[]): void } }, req: IncomingMessage, res: ServerResponse, error: GatewayError) {
        const { status, body } = toErrorResponse(error);
        if (status >= 500) this.logger.error(`${req.method} ${req.url} failed:`, error);
        if (status === 503) res.setHeader("Retry-After", "5");
        sendJson(res, status, body);
      },
    },

    actions: {
      /** 200 when this node can serve, 503 when a dependency it needs is down; one entry per dependency. */
      health: {
        params: { $$strict: true },
        async handler(ctx: Context<Record<string, never>, ShoalMeta>) {
          const report = await runtime.health.run();
          ctx.meta.$statusCode = report.status === "down" ? 503 : 200;
          return report;
        },
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

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { HealthRegistry } from "../health";
import { isServing } from "../health";
import { sendJson } from "./front-door";
import { sendMetrics } from "./metrics-access";

/**
 * The operators' own listener (`METRICS_PORT`, on loopback unless `METRICS_HOST` says otherwise):
 * `/metrics` for Prometheus, `/health` with every check's details (run now), `/ready` the same from checks run at
 * most a few seconds ago (the readiness probe of nodes without the api service), and `/live`. Nothing here is rate-limited.
 */
export class MetricsListener {
  private readonly server: http.Server;

  constructor(render: () => string, health: HealthRegistry) {
    this.server = http.createServer((req, res) => {
      const path = req.url?.split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD") sendJson(res, 405, { error: { code: "method_not_allowed", message: "Only GET.", fields: {} } });
      else if (path === "/metrics") sendMetrics(res, render());
      // Liveness for nodes without the api service (workers, core), which have no /api/health/live.
      else if (path === "/live") sendJson(res, 200, { status: "live" });
      else if (path === "/health") void health.run().then((report) => sendJson(res, isServing(report) ? 200 : 503, report));
      else if (path === "/ready") void health.readiness().then((report) => sendJson(res, isServing(report) ? 200 : 503, report));
      else sendJson(res, 404, { error: { code: "not_found", message: "Not found: /metrics, /health, /ready and /live are served here.", fields: {} } });
    });
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

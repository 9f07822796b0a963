import http from "node:http";
import type { AddressInfo } from "node:net";
import { isServing, publicHealthView } from "../health";
import type { HealthRegistry } from "../health";

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(payload) });
  res.end(payload);
}

export const LIVENESS_PATH = "/api/health/live";
export const READINESS_PATH = "/api/health";
/** The load balancer's and the orchestrator's readiness probe: answered here, from the last run of the checks (HealthRegistry.readiness). */
export const PROBE_PATH = "/api/health/ready";

/**
 * The node's HTTP server. It listens before the node's dependencies are up, so that
 * `/api/health` can answer 503 `starting` while the node cannot yet serve; once every
 * service has started (the health registry's phase is `ready`) the gateway takes every
 * request. `/api/health/live` answers 200 while the process serves at all. `/api/health/ready` is the
 * probe: answered here before the gateway, from checks run at most a few seconds ago, so that a node busy
 * serving is not taken for a node that cannot serve.
 */
export class FrontDoor {
  readonly server: http.Server;
  private handler: RequestHandler | undefined;
  private inFlight = 0;
  /** Taking new requests; a stopping node goes on taking them for SHUTDOWN_DELAY_SECONDS while readiness says 503. */
  private accepting = true;

  constructor(private readonly health: HealthRegistry) {
    this.server = http.createServer((req, res) => {
      this.inFlight++;
      res.once("close", () => this.inFlight--);
      const path = req.url?.split("?")[0];
      const probe = req.method === "GET" || req.method === "HEAD";
      if (path === LIVENESS_PATH && probe) sendJson(res, 200, { status: "live" });
      else if (path === PROBE_PATH && probe) void this.answerProbe(res);
      else if (this.handler && this.accepting && this.health.phase !== "starting") this.handler(req, res);
      else void this.answerWhileNotReady(req, res, path);
    });
    this.server.keepAliveTimeout = 65_000;
  }

  listen(port: number, host?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  serve(handler: RequestHandler | undefined): void {
    this.handler = handler;
  }

  /**
   * Once the node stops being ready: waits for the requests in flight (a tus PATCH included) to finish,
   * or for `deadline`. New requests meanwhile get 503 and `Connection: close`, so that clients and the
   * load balancer go to another node. (Not closeIdleConnections(): on Node 20 it also closes a connection
   * whose request body is still arriving.)
   */
  async drain(deadline: number): Promise<void> {
    this.accepting = false;
    while (this.inFlight > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async answerProbe(res: http.ServerResponse): Promise<void> {
    const report = await this.health.readiness();
    res.setHeader("Cache-Control", "no-store");
    sendJson(res, isServing(report) ? 200 : 503, publicHealthView(report));
  }

  private async answerWhileNotReady(_req: http.IncomingMessage, res: http.ServerResponse, path: string | undefined): Promise<void> {
    res.setHeader("Cache-Control", "no-store");
    if (path === READINESS_PATH) {
      const report = await this.health.readiness();
      sendJson(res, isServing(report) ? 200 : 503, publicHealthView(report));
      return;
    }
    res.setHeader("Retry-After", "5");
    if (this.health.phase === "stopping") res.setHeader("Connection", "close");
    const message = this.health.phase === "stopping" ? "This Shoal node is stopping; try again shortly." : "Shoal is starting; try again shortly.";
    sendJson(res, 503, { error: { code: "unavailable", message, fields: {} } });
  }
}

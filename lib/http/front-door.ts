import http from "node:http";
import type { AddressInfo } from "node:net";
import type { HealthRegistry } from "../health";

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(payload) });
  res.end(payload);
}

/**
 * The node's HTTP server. It listens before the node's dependencies are up, so that
 * `/api/health` can say what the node is waiting for (503) while the gateway cannot
 * yet serve; once the gateway is ready it takes every request.
 */
export class FrontDoor {
  readonly server: http.Server;
  private handler: RequestHandler | undefined;

  constructor(private readonly health: HealthRegistry) {
    this.server = http.createServer((req, res) => {
      if (this.handler) this.handler(req, res);
      else void this.answerWhileStarting(req, res);
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

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async answerWhileStarting(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.url?.split("?")[0] === "/api/health") {
      const report = await this.health.run();
      sendJson(res, 503, { status: "down", checks: { ...report.checks, node: { status: "down", error: "starting" } } });
      return;
    }
    res.setHeader("Retry-After", "5");
    sendJson(res, 503, { error: { code: "unavailable", message: "Shoal is starting; try again shortly.", fields: {} } });
  }
}

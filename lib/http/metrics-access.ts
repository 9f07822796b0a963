import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "./front-door";

/** Whether a request on the public port may read /metrics: only with `Authorization: Bearer <METRICS_TOKEN>`, and never without a token set. */
export function isAuthorizedScrape(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return false;
  const given = req.headers.authorization?.startsWith("Bearer ") ? Buffer.from(req.headers.authorization.slice(7).trim()) : undefined;
  const expected = Buffer.from(token);
  return given !== undefined && given.length === expected.length && timingSafeEqual(given, expected);
}

export function sendMetrics(res: ServerResponse, text: string): void {
  res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": "no-store" });
  res.end(text);
}

/** GET /metrics on the public port: the metrics to a holder of the token, 404 (as if there were none) to anyone else. */
export function metricsOnPublicPort(token: string | undefined, render: () => string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (isAuthorizedScrape(req, token)) sendMetrics(res, render());
    else sendJson(res, 404, { error: { code: "not_found", message: "Not found.", fields: {} } });
  };
}

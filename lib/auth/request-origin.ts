import type { IncomingMessage } from "node:http";
import proxyaddr from "proxy-addr";

const HOST_PATTERN = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The origin a request was addressed to: its scheme and `Host`, or `X-Forwarded-Proto` and
 * `X-Forwarded-Host` when the request comes through a trusted proxy. A page served from that
 * origin may change things here (Django's same-origin rule), so that `http://127.0.0.1:3000`
 * or a LAN address works without naming it in the settings.
 */
export function requestOriginResolver(trustedProxies: readonly string[]): (req: IncomingMessage) => string | undefined {
  const trust = proxyaddr.compile([...trustedProxies]);
  return (req) => {
    const peer = req.socket.remoteAddress;
    const viaProxy = peer !== undefined && trust(peer, 0);
    const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
    const scheme = (viaProxy ? firstValue(req.headers["x-forwarded-proto"]) : undefined) ?? (tls ? "https" : "http");
    const host = (viaProxy ? firstValue(req.headers["x-forwarded-host"]) : undefined) ?? req.headers.host;
    if (!host || (scheme !== "http" && scheme !== "https")) return undefined;
    // A Host header with a path, credentials or anything else is not an origin.
    if (!HOST_PATTERN.test(host)) return undefined;
    try {
      return new URL(`${scheme}://${host}`).origin;
    } catch {
      return undefined;
    }
  };
}

function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const first = value?.split(",")[0]?.trim().toLowerCase();
  return first === "" ? undefined : first;
}

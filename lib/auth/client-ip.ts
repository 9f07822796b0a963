import type { IncomingMessage } from "node:http";
import proxyaddr from "proxy-addr";

/**
 * The client's address: the socket peer, or the address its trusted proxies report in
 * X-Forwarded-For. Proxies not in the list are not believed, so a client cannot pick
 * its own address (and rate-limit key) by sending the header itself.
 */
export function clientIpResolver(trustedProxies: readonly string[]): (req: IncomingMessage) => string {
  const trust = proxyaddr.compile([...trustedProxies]);
  return (req) => {
    const address = proxyaddr(req as Parameters<typeof proxyaddr>[0], trust);
    return address.startsWith("::ffff:") ? address.slice(7) : address;
  };
}

import type { IncomingMessage } from "node:http";
import { requestOriginResolver } from "../../lib/auth/request-origin";

function request(peer: string, headers: Record<string, string>, encrypted = false): IncomingMessage {
  return { socket: { remoteAddress: peer, encrypted }, headers } as unknown as IncomingMessage;
}

describe("the origin a request was addressed to", () => {
  const direct = requestOriginResolver([]);
  const behindProxy = requestOriginResolver(["loopback"]);

  it("is the scheme and Host of a direct request", () => {
    expect(direct(request("192.168.1.20", { host: "192.168.1.5:3000" }))).toBe("http://192.168.1.5:3000");
    expect(direct(request("127.0.0.1", { host: "127.0.0.1:3000" }))).toBe("http://127.0.0.1:3000");
    expect(direct(request("::1", { host: "[::1]:3000" }))).toBe("http://[::1]:3000");
    expect(direct(request("127.0.0.1", { host: "shoal.example" }, true))).toBe("https://shoal.example");
  });

  it("believes X-Forwarded-Proto and X-Forwarded-Host only from a trusted proxy", () => {
    const forwarded = { host: "10.0.0.7:3000", "x-forwarded-proto": "https", "x-forwarded-host": "media.example.org" };
    expect(behindProxy(request("127.0.0.1", forwarded))).toBe("https://media.example.org");
    expect(direct(request("127.0.0.1", forwarded))).toBe("http://10.0.0.7:3000");
    expect(behindProxy(request("203.0.113.9", forwarded))).toBe("http://10.0.0.7:3000");
  });

  it("takes the first value of a forwarded list, as the proxy nearest the client wrote it", () => {
    const listed = { host: "x", "x-forwarded-proto": "https, http", "x-forwarded-host": "media.example.org, internal:8080" };
    expect(behindProxy(request("127.0.0.1", listed))).toBe("https://media.example.org");
  });

  it("is nothing for a missing or malformed Host, or another scheme", () => {
    expect(direct(request("127.0.0.1", {}))).toBeUndefined();
    for (const host of ["evil.example/path", "user@evil.example", "evil.example:3000:1", "", "a b"]) {
      expect(direct(request("127.0.0.1", { host }))).toBeUndefined();
    }
    expect(behindProxy(request("127.0.0.1", { host: "x", "x-forwarded-proto": "javascript" }))).toBeUndefined();
  });
});

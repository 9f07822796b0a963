/**
 * The HAProxy template and its renderings: what `npm run cluster` writes for its ports, and the
 * checked-in rendering docker-compose mounts, both accepted by HAProxy itself (`haproxy -c`).
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { COMPOSE_HAPROXY_CONFIG, COMPOSE_HAPROXY_OPTIONS, renderHaproxyConfig } from "../../scripts/cluster/haproxy-config";
import { canConnect, freePort } from "../../scripts/services/ports";

function haproxyCheck(config: string): { status: number | null; output: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-haproxy-"));
  try {
    const file = path.join(dir, "haproxy.cfg");
    fs.writeFileSync(file, config);
    const check = spawnSync("haproxy", ["-c", "-f", file], { encoding: "utf8" });
    if (check.error !== undefined) throw new Error(`haproxy could not be run (${check.error.message}): apt-get install haproxy`);
    return { status: check.status, output: `${check.stdout}${check.stderr}`.replace(/^\[NOTICE\].*\n?/gm, "").trim() };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const local = renderHaproxyConfig({
  bind: "127.0.0.1:8080",
  apiServers: [
    { name: "api-1", address: "127.0.0.1:41001" },
    { name: "api-2", address: "127.0.0.1:41002" },
    { name: "api-3", address: "127.0.0.1:41003" },
  ],
});

describe("HAProxy configuration", () => {
  it("renders for the local cluster's ports into a configuration HAProxy accepts without a warning", () => {
    expect(haproxyCheck(local)).toEqual({ status: 0, output: "Configuration file is valid" });
    expect(local).toMatch(/^\s+bind 127\.0\.0\.1:8080$/m);
    expect(local.match(/^\s+server .*$/gm)?.map((line) => line.trim())).toEqual([
      "server api-1 127.0.0.1:41001 cookie api-1",
      "server api-2 127.0.0.1:41002 cookie api-2",
      "server api-3 127.0.0.1:41003 cookie api-3",
    ]);
  });

  it("checks readiness, retries only idempotent requests elsewhere, and names the answering node", () => {
    // The cheap probe the node answers before its gateway, allowed 5 s, three failures in a row before a node goes out.
    expect(local).toMatch(/^\s+http-check send meth GET uri \/api\/health\/ready /m);
    expect(local).toMatch(/^\s+timeout check 5s$/m);
    expect(local).toMatch(/^\s+default-server check .*\bfall 3 rise 2$/m);
    // Slow or failing requests never mark a node down, and a node taken out keeps its sessions (uploads in flight).
    expect(local.replace(/#.*$/gm, "")).not.toMatch(/\bon-marked-down\b|\bobserve\b|\bon-error\b/);
    expect(local).toMatch(/^\s+http-check expect status 200$/m);
    expect(local).toMatch(/^\s+option redispatch\b/m);
    expect(local).toMatch(/^\s+http-request disable-l7-retry if !idempotent$/m);
    expect(local).toMatch(/^\s+acl idempotent method GET HEAD OPTIONS$/m);
    expect(local).toMatch(/^\s+http-response set-header X-Shoal-Backend %s$/m);
    expect(local).toMatch(/^\s+cookie SHOAL_NODE insert indirect nocache httponly$/m);
  });

  it("keeps websockets open past socket.io's 45 s heartbeat and passes the client's address", () => {
    const seconds = (value: string | undefined) => {
      const match = /^(\d+)(s|m|h)$/.exec(value ?? "");
      return match === null ? Number.NaN : Number(match[1]) * { s: 1, m: 60, h: 3600 }[match[2] as "s" | "m" | "h"];
    };
    expect(seconds(/^\s+timeout tunnel (\S+)$/m.exec(local)?.[1])).toBeGreaterThan(45);
    expect(seconds(/^\s+timeout server (\S+)$/m.exec(local)?.[1])).toBeGreaterThan(45);
    expect(local).toMatch(/^\s+option forwardfor$/m);
    expect(local).toMatch(/^\s+http-request del-header X-Forwarded-For$/m);
    expect(local).toMatch(/^\s+http-request set-header X-Forwarded-Proto /m);
    expect(local).toMatch(/^\s+http-request set-header X-Forwarded-Host /m);
  });

  it("does not pass on the node's keep-alive time, which outlasts HAProxy's own idle timeout for clients", async () => {
    // A node's HTTP server as lib/http/front-door.ts sets it up: idle connections kept 65 s, and it says so.
    const node = http.createServer((_request, response) => response.end("ok"));
    node.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve) => node.listen(0, "127.0.0.1", resolve));
    const nodePort = (node.address() as AddressInfo).port;
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-haproxy-"));
    const file = path.join(dir, "haproxy.cfg");
    fs.writeFileSync(file, renderHaproxyConfig({ bind: `127.0.0.1:${port}`, apiServers: [{ name: "api-1", address: `127.0.0.1:${nodePort}` }] }));
    const haproxy = spawn("haproxy", ["-db", "-f", file], { stdio: "ignore" });
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await canConnect(port);
          break;
        } catch (error) {
          if (attempt >= 50) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      const direct = await fetch(`http://127.0.0.1:${nodePort}/`);
      expect(direct.headers.get("keep-alive")).toBe("timeout=65");
      const throughHaproxy = await fetch(`http://127.0.0.1:${port}/`);
      expect(await throughHaproxy.text()).toBe("ok");
      expect(throughHaproxy.headers.get("keep-alive")).toBeNull();
    } finally {
      haproxy.kill("SIGTERM");
      const closed = new Promise<void>((resolve) => node.close(() => resolve()));
      node.closeAllConnections();
      await closed;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("has docker-compose's rendering checked in, up to date, and accepted by HAProxy", () => {
    const rendered = renderHaproxyConfig(COMPOSE_HAPROXY_OPTIONS);
    // On failure: npx tsx scripts/cluster.ts haproxy-config --compose > deploy/haproxy/haproxy.compose.cfg
    expect(fs.readFileSync(COMPOSE_HAPROXY_CONFIG, "utf8")).toBe(rendered);
    expect(haproxyCheck(rendered)).toEqual({ status: 0, output: "Configuration file is valid" });
  });

  it("refuses names and addresses that would break the configuration", () => {
    const render = (name: string, address: string) => () => renderHaproxyConfig({ bind: "127.0.0.1:8080", apiServers: [{ name, address }] });
    expect(render("api 1", "127.0.0.1:1")).toThrow(/server name/);
    expect(render("api-1", "127.0.0.1")).toThrow(/host:port/);
    expect(() => renderHaproxyConfig({ bind: "127.0.0.1:8080", apiServers: [] })).toThrow(/at least one/);
    expect(() => renderHaproxyConfig({ bind: "127.0.0.1:8080", apiServers: [{ name: "a", address: "h:1" }] }, "bind {{BIND}}\n{{OTHER}}\n")).toThrow(
      /placeholder nothing fills: \{\{OTHER\}\}/,
    );
  });
});

/**
 * Renders deploy/haproxy/haproxy.cfg.template: the one HAProxy configuration of the local cluster and
 * of docker-compose.yml (whose rendering is checked in as deploy/haproxy/haproxy.compose.cfg).
 */
import fs from "node:fs";
import path from "node:path";

export const HAPROXY_TEMPLATE = path.resolve(__dirname, "../../deploy/haproxy/haproxy.cfg.template");
export const COMPOSE_HAPROXY_CONFIG = path.resolve(__dirname, "../../deploy/haproxy/haproxy.compose.cfg");

export interface ApiServer {
  /** The server's name in HAProxy: its log lines, X-Shoal-Backend and the sticky cookie's value. */
  readonly name: string;
  /** host:port of the node's HTTP listener. */
  readonly address: string;
  /** Look the host name up through the `dns` resolvers at run time (the server waits in maintenance until it resolves). */
  readonly resolveByDns?: boolean;
}

export interface HaproxyConfigOptions {
  /** address:port clients connect to, e.g. 127.0.0.1:8080. */
  readonly bind: string;
  readonly apiServers: readonly ApiServer[];
}

const SERVER_NAME = /^[A-Za-z0-9._-]+$/;
const ADDRESS = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$|^:\d{1,5}$/;

function serverLine(server: ApiServer): string {
  if (!SERVER_NAME.test(server.name)) throw new Error(`not a usable HAProxy server name: ${JSON.stringify(server.name)}`);
  if (!ADDRESS.test(server.address)) throw new Error(`not a host:port address: ${JSON.stringify(server.address)}`);
  const dns = server.resolveByDns === true ? " resolvers dns init-addr none" : "";
  return `server ${server.name} ${server.address} cookie ${server.name}${dns}`;
}

export function renderHaproxyConfig(options: HaproxyConfigOptions, template = fs.readFileSync(HAPROXY_TEMPLATE, "utf8")): string {
  if (!ADDRESS.test(options.bind)) throw new Error(`not an address:port to bind: ${JSON.stringify(options.bind)}`);
  if (options.apiServers.length === 0) throw new Error("at least one api server is needed");
  const names = options.apiServers.map((server) => server.name);
  if (new Set(names).size !== names.length) throw new Error(`api server names must differ: ${names.join(", ")}`);
  const rendered = template
    .replace(/^([ \t]*)\{\{API_SERVERS\}\}[ \t]*$/m, (_line, indent: string) =>
      options.apiServers.map((server) => `${indent}${serverLine(server)}`).join("\n"),
    )
    .replace(/\{\{BIND\}\}/g, options.bind);
  const leftOver = /\{\{[A-Z_]+\}\}/.exec(rendered);
  if (leftOver !== null) throw new Error(`the HAProxy template has a placeholder nothing fills: ${leftOver[0]}`);
  return rendered;
}

/** docker-compose.yml's api nodes: services api-1 and api-2 on port 3000, HAProxy on 8080 in its container. */
export const COMPOSE_HAPROXY_OPTIONS: HaproxyConfigOptions = {
  bind: ":8080",
  apiServers: [
    { name: "api-1", address: "api-1:3000", resolveByDns: true },
    { name: "api-2", address: "api-2:3000", resolveByDns: true },
  ],
};

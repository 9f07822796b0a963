/**
 * The web app server over real HTTP, on a build directory made for the test (index.html, a
 * fingerprinted script and its source map), as a node serves dist/web.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { createWebApp } from "../../lib/http/web-app";
import type { WebAppOptions } from "../../lib/http/web-app";

let root: string;
const servers: http.Server[] = [];

async function serve(options: WebAppOptions): Promise<string> {
  const web = createWebApp(options);
  const server = http.createServer((req, res) => web.serve(req, res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  root = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-web-"));
  await fs.promises.mkdir(path.join(root, "assets"));
  await fs.promises.writeFile(path.join(root, "index.html"), "<!doctype html><title>Shoal</title>");
  await fs.promises.writeFile(path.join(root, "assets", "index-3f2a1b.js"), "console.log(1);\n//# sourceMappingURL=index-3f2a1b.js.map\n");
  await fs.promises.writeFile(path.join(root, "assets", "index-3f2a1b.js.map"), JSON.stringify({ version: 3, sources: ["../src/main.tsx"], mappings: "" }));
});

afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  await fs.promises.rm(root, { recursive: true, force: true });
});

test("source maps are not served by default, however the path is spelled; the scripts are", async () => {
  const base = await serve({ root });
  expect((await fetch(`${base}/assets/index-3f2a1b.js`)).status).toBe(200);
  for (const mapPath of ["/assets/index-3f2a1b.js.map", "/assets/index-3f2a1b.js.m%61p"]) {
    const answer = await fetch(`${base}${mapPath}`, { headers: { Accept: "text/html,*/*" } });
    expect([mapPath, answer.status]).toEqual([mapPath, 404]);
    expect(await answer.text()).not.toContain("sources");
  }
});

test("with source maps asked for (WEB_SOURCE_MAPS), they are served", async () => {
  const base = await serve({ root, sourceMaps: true });
  const answer = await fetch(`${base}/assets/index-3f2a1b.js.map`);
  expect(answer.status).toBe(200);
  expect(await answer.json()).toMatchObject({ version: 3, sources: ["../src/main.tsx"] });
});

/**
 * CORS follows CORS_ORIGINS on every route, tus included, and never stands in the way of Shoal's own
 * page: the origin rule (public URL, CORS_ORIGINS, the request's own origin) decides what may change.
 */
import { startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

const APP = "https://app.example";
let node: RunningNode;

beforeAll(async () => {
  node = await startNode({ CORS_ORIGINS: APP, RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100" });
});

afterAll(async () => {
  await stopAllNodes();
});

let accounts = 0;
function register(origin: string): Promise<Response> {
  accounts++;
  return fetch(`${node.baseUrl}/api/auth/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Origin: origin },
    body: JSON.stringify({ username: `corsuser${accounts}`, email: `cors${accounts}@example.test`, password: "a sturdy horse battery 42" }),
  });
}

function preflight(path: string, origin: string, method: string): Promise<Response> {
  return fetch(`${node.baseUrl}${path}`, {
    method: "OPTIONS",
    headers: { Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": "content-type,tus-resumable,upload-length" },
  });
}

test.each([
  ["the public URL", () => node.publicUrl],
  ["the address the page was opened at", () => node.baseUrl],
  ["a CORS origin", () => APP],
])("with CORS_ORIGINS set, a page at %s may sign up", async (_what, originOf) => {
  const answer = await register(originOf());
  expect(answer.status).toBe(201);
});

test("a foreign page may not, and gets no CORS headers", async () => {
  const answer = await register("https://evil.example");
  expect(answer.status).toBe(403);
  expect(answer.headers.get("access-control-allow-origin")).toBeNull();
});

test.each(["/api/auth/register", "/api/uploads", "/api/media"])("a preflight to %s is answered for the CORS origin only", async (path) => {
  const allowed = await preflight(path, APP, "POST");
  expect(allowed.status).toBe(204);
  expect(allowed.headers.get("access-control-allow-origin")).toBe(APP);
  expect(allowed.headers.get("access-control-allow-credentials")).toBe("true");
  expect(allowed.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("upload-length");

  const foreign = await preflight(path, "https://evil.example", "POST");
  expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
  expect(foreign.headers.get("access-control-allow-credentials")).toBeNull();
});

test("a CORS origin may read the tus headers of an answer", async () => {
  const real = await fetch(`${node.baseUrl}/api/health`, { headers: { Origin: APP } });
  expect(real.headers.get("access-control-allow-origin")).toBe(APP);
  expect(real.headers.get("access-control-expose-headers")?.split(/,\s*/)).toEqual(expect.arrayContaining(["Location", "Upload-Offset", "Shoal-Media-Id"]));
});

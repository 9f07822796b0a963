import type { OpenApiDocument, SchemaObject } from "../../lib/http/openapi";
import { checkOpenApiDocument } from "../../lib/http/openapi";
import { API_ALIASES } from "../../services/api.service";
import { startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

interface Operation {
  operationId: string;
  "x-moleculer-action": string;
  parameters?: ({ name: string; in: string } | { $ref: string })[];
  requestBody?: { required: boolean; content: { "application/json": { schema: SchemaObject } } };
  responses: Record<string, unknown>;
}

let node: RunningNode;
let document: OpenApiDocument;

/** Written independently of lib/http/openapi.ts: `GET users/:id` → ["get", "/api/users/{id}"]. */
function expectedOperation(alias: string): [method: string, path: string] {
  const [method, aliasPath] = alias.trim().split(/\s+/);
  return [method.toLowerCase(), `/api/${aliasPath.replace(/^\/+/, "").replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`];
}

function operationAt(method: string, path: string): Operation | undefined {
  return document.paths[path]?.[method] as unknown as Operation | undefined;
}

beforeAll(async () => {
  node = await startNode({});
  const response = await fetch(`${node.baseUrl}/api/openapi.json`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  document = (await response.json()) as OpenApiDocument;
});

afterAll(async () => {
  await stopAllNodes();
});

test("GET /api/openapi.json answers an OpenAPI 3.0 document for this server", () => {
  expect(document.openapi).toMatch(/^3\.0\.\d+$/);
  expect(document.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
  // PORT=0 and no SHOAL_PUBLIC_URL: the default public URL names the port actually bound, not :0.
  expect(node.settings.publicUrl).toBe("http://localhost:0");
  expect(document.servers).toEqual([{ url: `http://localhost:${node.port ?? "?"}` }]);
});

test("every route in API_ALIASES is in the document, with its method, path and action (the drift check)", () => {
  const missing: string[] = [];
  for (const [alias, action] of Object.entries(API_ALIASES)) {
    const [method, path] = expectedOperation(alias);
    const found = operationAt(method, path);
    if (found?.["x-moleculer-action"] !== action) missing.push(`${alias} → ${action}`);
  }
  expect(missing).toEqual([]);
});

test("the document describes no route that API_ALIASES does not have", () => {
  const routed = new Set(Object.keys(API_ALIASES).map((alias) => expectedOperation(alias).join(" ")));
  const documented = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`));
  expect(documented.filter((entry) => !routed.has(entry))).toEqual([]);
  expect(documented).toHaveLength(routed.size);
});

test("the document is structurally valid: required fields, declared path parameters, resolving $refs, plain JSON", () => {
  expect(checkOpenApiDocument(document)).toEqual([]);
});

test("bodies and parameters come from the live actions' params", () => {
  const register = operationAt("post", "/api/auth/register");
  expect(register?.requestBody?.content["application/json"].schema).toMatchObject({
    type: "object",
    additionalProperties: false,
    required: expect.arrayContaining(["username", "email", "password"]),
    properties: { email: { type: "string", format: "email" } },
  });
  expect(operationAt("get", "/api/users/{id}")?.parameters).toEqual([
    { name: "id", in: "path", required: true, schema: { type: "string", pattern: expect.any(String) } },
  ]);
  expect(operationAt("get", "/api/admin/audit")?.parameters).toEqual(
    expect.arrayContaining([expect.objectContaining({ name: "limit", in: "query", required: false, schema: expect.objectContaining({ type: "integer" }) })]),
  );
  expect(document.components.securitySchemes).toMatchObject({
    sessionCookie: { in: "cookie", name: "shoal_session" },
    bearerAuth: { scheme: "bearer" },
    csrfToken: { in: "header", name: "X-CSRF-Token" },
  });
});

test("what the document calls strict is strict: an unknown body field is refused with the documented 422 error", async () => {
  const strictBodies = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item as unknown as Record<string, Operation>)
      .filter(([, op]) => op.requestBody?.content["application/json"].schema.additionalProperties === false)
      .map(([method]) => ({ method, path })),
  );
  expect(strictBodies.length).toBeGreaterThan(0);
  for (const { method, path } of strictBodies) {
    const response = await fetch(`${node.baseUrl}${path}`, {
      method: method.toUpperCase(),
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ notDocumented: 1 }),
    });
    const body = (await response.json()) as { error: { code: string; fields: Record<string, string> } };
    expect({ route: `${method} ${path}`, status: response.status, code: body.error.code }).toEqual({
      route: `${method} ${path}`,
      status: 422,
      code: "validation_failed",
    });
    expect(JSON.stringify(body.error.fields)).toContain("notDocumented");
  }
});

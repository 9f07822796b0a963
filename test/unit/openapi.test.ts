import type { ApiRoute, OpenApiDocument, SchemaObject } from "../../lib/http/openapi";
import { buildOpenApiDocument, checkOpenApiDocument, parseAlias, paramsToObjectSchema, toOpenApiPath, toOpenApiSchema } from "../../lib/http/openapi";

const ulid = { type: "string", pattern: /^[0-9A-HJKMNP-TV-Z]{26}$/, messages: { stringPattern: "is not a user id" } };

function build(routes: ApiRoute[]): OpenApiDocument {
  return buildOpenApiDocument({ routes, title: "Test API", version: "1.2.3", serverUrl: "https://shoal.example" });
}

function operation(document: OpenApiDocument, path: string, method: string): Record<string, unknown> {
  const found = document.paths[path]?.[method];
  if (found === undefined) throw new Error(`${method} ${path} is not in the document`);
  return found as Record<string, unknown>;
}

function bodySchema(op: Record<string, unknown>): SchemaObject {
  return (op.requestBody as { content: { "application/json": { schema: SchemaObject } } }).content["application/json"].schema;
}

describe("fastest-validator rules become OpenAPI schemas", () => {
  test("strings: min/max/length/pattern/trim/empty/enum; RegExp patterns become their source", () => {
    expect(toOpenApiSchema({ type: "string", trim: true, min: 3, max: 32, pattern: /^[a-z]+$/i })).toEqual({
      type: "string",
      minLength: 3,
      maxLength: 32,
      pattern: "^[a-z]+$",
      "x-pattern-flags": "i",
      description: expect.stringContaining("whitespace"),
      "x-trim": true,
    });
    expect(toOpenApiSchema(ulid)).toEqual({ type: "string", pattern: "^[0-9A-HJKMNP-TV-Z]{26}$" });
    expect(toOpenApiSchema({ type: "string", length: 64, pattern: "^[0-9a-f]+$" })).toEqual({
      type: "string",
      minLength: 64,
      maxLength: 64,
      pattern: "^[0-9a-f]+$",
    });
    expect(toOpenApiSchema({ type: "string", empty: false, enum: ["a", "b"] })).toEqual({ type: "string", minLength: 1, enum: ["a", "b"] });
    // A RegExp that crossed a transporter arrives as {}: dropped, not serialised as an object.
    expect(toOpenApiSchema({ type: "string", pattern: {} })).toEqual({ type: "string" });
  });

  test("email, url, uuid, date", () => {
    expect(toOpenApiSchema({ type: "email", max: 254, normalize: false })).toEqual({ type: "string", format: "email", maxLength: 254 });
    expect(toOpenApiSchema({ type: "url" })).toEqual({ type: "string", format: "uri" });
    expect(toOpenApiSchema("uuid")).toEqual({ type: "string", format: "uuid" });
    expect(toOpenApiSchema({ type: "date", convert: true })).toEqual({ type: "string", format: "date-time" });
  });

  test("numbers and integers with bounds and defaults; booleans", () => {
    expect(toOpenApiSchema({ type: "number", integer: true, min: 1, max: 200, convert: true, default: 50 })).toEqual({
      type: "integer",
      minimum: 1,
      maximum: 200,
      default: 50,
    });
    expect(toOpenApiSchema({ type: "number", positive: true })).toEqual({ type: "number", minimum: 0, exclusiveMinimum: true });
    expect(toOpenApiSchema({ type: "number", min: -1.5 })).toEqual({ type: "number", minimum: -1.5 });
    expect(toOpenApiSchema({ type: "boolean", default: false })).toEqual({ type: "boolean", default: false });
  });

  test("enum and equal", () => {
    expect(toOpenApiSchema({ type: "enum", values: ["user", "admin"], default: "user" })).toEqual({
      type: "string",
      enum: ["user", "admin"],
      default: "user",
    });
    expect(toOpenApiSchema({ type: "enum", values: [1, "one"] })).toEqual({ enum: [1, "one"] });
    expect(toOpenApiSchema({ type: "equal", value: true })).toEqual({ type: "boolean", enum: [true] });
  });

  test("objects: props/properties, strict → additionalProperties false, only strict true", () => {
    expect(
      toOpenApiSchema({
        type: "object",
        strict: true,
        props: { name: "string|min:1", age: { type: "number", optional: true }, nickname: { type: "string", default: "" } },
      }),
    ).toEqual({
      type: "object",
      properties: { name: { type: "string", minLength: 1 }, age: { type: "number" }, nickname: { type: "string", default: "" } },
      required: ["name"],
      additionalProperties: false,
    });
    expect(toOpenApiSchema({ type: "object", strict: "remove", properties: { a: "boolean" } })).toEqual({
      type: "object",
      properties: { a: { type: "boolean" } },
      required: ["a"],
    });
    expect(toOpenApiSchema({ type: "object" })).toEqual({ type: "object" });
    // The $$type shorthand for nested objects.
    expect(toOpenApiSchema({ $$type: "object|optional", street: "string" })).toEqual({
      type: "object",
      properties: { street: { type: "string" } },
      required: ["street"],
    });
  });

  test("arrays: items, bounds, uniqueness, the [] shorthand", () => {
    expect(toOpenApiSchema({ type: "array", items: { type: "string", max: 20 }, min: 1, max: 10, unique: true })).toEqual({
      type: "array",
      items: { type: "string", maxLength: 20 },
      minItems: 1,
      maxItems: 10,
      uniqueItems: true,
    });
    expect(toOpenApiSchema("number[]")).toEqual({ type: "array", items: { type: "number" } });
    expect(toOpenApiSchema({ type: "array", items: "string", enum: ["a", "b"] })).toEqual({ type: "array", items: { type: "string", enum: ["a", "b"] } });
  });

  test("shorthand strings, multi-rules, nullable, unknown types", () => {
    expect(toOpenApiSchema("string|min:3|max:10|optional")).toEqual({ type: "string", minLength: 3, maxLength: 10 });
    expect(toOpenApiSchema(["string", { type: "number", nullable: true }])).toEqual({
      anyOf: [{ type: "string" }, { type: "number", nullable: true }],
      nullable: true,
    });
    expect(toOpenApiSchema({ type: "custom", check: () => true })).toEqual({});
    expect(toOpenApiSchema({ type: "any", default: () => 1 })).toEqual({});
  });

  test("a params schema: $$strict marks the object, optional and defaulted fields are not required, metas and omitted names are left out", () => {
    const params = {
      $$strict: true,
      id: ulid,
      username: { type: "string", trim: true, min: 3, max: 32 },
      email: { type: "email", max: 254 },
      password: { type: "string", min: 1, max: 1024, optional: true },
      role: { type: "enum", values: ["user", "admin"], default: "user" },
      legacy: { type: "forbidden" },
    };
    const schema = paramsToObjectSchema(params, ["id"]);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(["username", "email"]);
    expect(Object.keys(schema.properties as object)).toEqual(["username", "email", "password", "role"]);
    expect(paramsToObjectSchema({ a: "string" }).additionalProperties).toBeUndefined();
    expect(paramsToObjectSchema({ $$strict: "remove", a: "string" }).additionalProperties).toBeUndefined();
  });
});

describe("routes", () => {
  test("parseAlias takes one method and a path, and refuses other forms", () => {
    expect(parseAlias("GET users/:id")).toEqual({ method: "GET", path: "users/:id" });
    expect(parseAlias("delete  users/me")).toEqual({ method: "DELETE", path: "users/me" });
    expect(() => parseAlias("REST users")).toThrow(/REST users/);
    expect(() => parseAlias("users")).toThrow();
    expect(() => parseAlias("ALL users")).toThrow();
  });

  test("alias paths go under the base path with {params}", () => {
    expect(toOpenApiPath("/api", "users/:id")).toEqual({ path: "/api/users/{id}", pathParams: ["id"] });
    expect(toOpenApiPath("/api", "/health")).toEqual({ path: "/api/health", pathParams: [] });
    expect(toOpenApiPath("/api", "openapi.json")).toEqual({ path: "/api/openapi.json", pathParams: [] });
    expect(toOpenApiPath("/api/", "a/:x/b/:y")).toEqual({ path: "/api/a/{x}/b/{y}", pathParams: ["x", "y"] });
    expect(() => toOpenApiPath("/api", "files/*")).toThrow();
    expect(() => toOpenApiPath("/api", "users/:id?")).toThrow();
  });
});

describe("buildOpenApiDocument", () => {
  const routes: ApiRoute[] = [
    { method: "GET", path: "health", action: "api.health", params: { $$strict: true }, description: "Readiness of this node." },
    {
      method: "POST",
      path: "auth/register",
      action: "users.register",
      params: { $$strict: true, username: "string|min:3", email: { type: "email" }, password: { type: "string", min: 1 } },
      successStatus: 201,
    },
    { method: "POST", path: "auth/logout", action: "users.logout", params: { $$strict: true } },
    { method: "GET", path: "users/:id", action: "users.get", params: { $$strict: true, id: ulid } },
    { method: "DELETE", path: "users/me", action: "users.deleteMe", params: { $$strict: true, password: "string" } },
    {
      method: "GET",
      path: "admin/audit",
      action: "site.listAudit",
      params: {
        $$strict: true,
        cursor: { type: "string", pattern: /^[0-9A-Z]{26}$/, optional: true },
        limit: { type: "number", integer: true, min: 1, max: 200, convert: true, default: 50 },
      },
    },
    { method: "PUT", path: "things/:id", action: "things.replace" },
  ];
  const document = build(routes);

  test("the top level: version, info, server, tags", () => {
    expect(document.openapi).toBe("3.0.3");
    expect(document.info).toMatchObject({ title: "Test API", version: "1.2.3" });
    expect(document.servers).toEqual([{ url: "https://shoal.example" }]);
    expect(document.tags.map((tag) => tag.name)).toEqual(["api", "site", "things", "users"]);
    expect(Object.keys(document.paths).sort()).toEqual(
      ["/api/admin/audit", "/api/auth/logout", "/api/auth/register", "/api/health", "/api/things/{id}", "/api/users/me", "/api/users/{id}"].sort(),
    );
  });

  test("operations carry the action, its description and the known success status", () => {
    expect(operation(document, "/api/health", "get")).toMatchObject({
      operationId: "api.health",
      "x-moleculer-action": "api.health",
      tags: ["api"],
      description: "Readiness of this node.",
    });
    expect(Object.keys(operation(document, "/api/auth/register", "post").responses as object)).toContain("201");
    expect(Object.keys(operation(document, "/api/health", "get").responses as object)).toContain("2XX");
  });

  test("bodies for POST/PUT/PATCH/DELETE from the params, strict and with required fields", () => {
    const register = operation(document, "/api/auth/register", "post");
    expect(register.requestBody).toMatchObject({ required: true });
    expect(bodySchema(register)).toEqual({
      type: "object",
      properties: { username: { type: "string", minLength: 3 }, email: { type: "string", format: "email" }, password: { type: "string", minLength: 1 } },
      required: ["username", "email", "password"],
      additionalProperties: false,
    });
    const logout = operation(document, "/api/auth/logout", "post");
    expect(logout.requestBody).toMatchObject({ required: false });
    expect(bodySchema(logout)).toEqual({ type: "object", properties: {}, additionalProperties: false });
    expect(bodySchema(operation(document, "/api/users/me", "delete")).required).toEqual(["password"]);
    // Without a known params schema the body says nothing, and the path parameter is a string.
    const unknown = operation(document, "/api/things/{id}", "put");
    expect(bodySchema(unknown)).toEqual({ type: "object" });
    expect(unknown.parameters).toContainEqual({ name: "id", in: "path", required: true, schema: { type: "string" } });
  });

  test("GET: path parameters from the template, query parameters from the other params", () => {
    const get = operation(document, "/api/users/{id}", "get");
    expect(get.parameters).toEqual([{ name: "id", in: "path", required: true, schema: { type: "string", pattern: "^[0-9A-HJKMNP-TV-Z]{26}$" } }]);
    expect(get.requestBody).toBeUndefined();
    const audit = operation(document, "/api/admin/audit", "get");
    expect(audit.parameters).toEqual([
      { name: "cursor", in: "query", required: false, schema: { type: "string", pattern: "^[0-9A-Z]{26}$" } },
      { name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 200, default: 50 } },
    ]);
    expect(operation(document, "/api/health", "get").parameters).toBeUndefined();
  });

  test("errors use the one Error shape on 4xx/5xx", () => {
    expect(document.components.schemas.Error).toMatchObject({
      required: ["error"],
      properties: { error: { required: ["code", "message", "fields"], properties: { fields: { additionalProperties: { type: "string" } } } } },
    });
    for (const item of Object.values(document.paths)) {
      for (const op of Object.values(item) as { responses: Record<string, { $ref?: string }> }[]) {
        expect(op.responses["4XX"]).toEqual({ $ref: "#/components/responses/Error" });
        expect(op.responses["5XX"]).toEqual({ $ref: "#/components/responses/Error" });
        expect(op.responses["422"]).toEqual({ $ref: "#/components/responses/ValidationFailed" });
      }
    }
    expect(document.components.responses.Error).toMatchObject({ content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
  });

  test("cookie and bearer sessions, and X-CSRF-Token on state-changing requests", () => {
    expect(document.components.securitySchemes).toMatchObject({
      sessionCookie: { type: "apiKey", in: "cookie", name: "shoal_session" },
      bearerAuth: { type: "http", scheme: "bearer" },
      csrfToken: { type: "apiKey", in: "header", name: "X-CSRF-Token" },
    });
    expect(document.components.parameters.CsrfToken).toMatchObject({ name: "X-CSRF-Token", in: "header" });
    const register = operation(document, "/api/auth/register", "post");
    expect(register.parameters).toContainEqual({ $ref: "#/components/parameters/CsrfToken" });
    expect(register.security).toContainEqual({ sessionCookie: [], csrfToken: [] });
    expect((register.responses as Record<string, unknown>)["403"]).toEqual({ $ref: "#/components/responses/Forbidden" });
    expect(operation(document, "/api/users/{id}", "get").security).toBeUndefined();
    const secure = buildOpenApiDocument({ routes: [], title: "t", version: "1", serverUrl: "https://x", sessionCookie: "__Host-shoal_session" });
    expect(secure.components.securitySchemes.sessionCookie).toMatchObject({ name: "__Host-shoal_session" });
  });

  test("the document is plain JSON and passes the structural check", () => {
    expect(JSON.parse(JSON.stringify(document))).toEqual(document);
    expect(checkOpenApiDocument(document)).toEqual([]);
  });

  test("a route routed twice, or an unsupported method, is refused", () => {
    expect(() => build([...routes, { method: "get", path: "/health", action: "api.other" }])).toThrow(/routed twice/);
    expect(() => build([{ method: "OPTIONS", path: "x", action: "a.b" }])).toThrow(/unsupported method/);
  });

  test("one action on two routes keeps operationIds unique", () => {
    const twice = build([
      { method: "GET", path: "a", action: "x.y" },
      { method: "GET", path: "b", action: "x.y" },
    ]);
    expect([operation(twice, "/api/a", "get").operationId, operation(twice, "/api/b", "get").operationId]).toEqual(["x.y", "x.y_2"]);
  });
});

describe("checkOpenApiDocument", () => {
  test("names what is broken", () => {
    const broken = JSON.parse(JSON.stringify(build([{ method: "GET", path: "users/:id", action: "users.get" }]))) as OpenApiDocument;
    broken.openapi = "2.0";
    const get = broken.paths["/api/users/{id}"].get as { parameters: unknown[]; responses: Record<string, unknown> };
    get.parameters = [];
    get.responses["4XX"] = { $ref: "#/components/responses/Missing" };
    get.responses.oops = { description: "x" };
    broken.components.schemas.Thing = { type: "object", required: ["a"], properties: {}, pattern: /x/ as unknown as string };
    const problems = checkOpenApiDocument(broken);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining("openapi is not 3.0.x"),
        expect.stringContaining("{id} is not declared"),
        expect.stringContaining("#/components/responses/Missing does not resolve"),
        expect.stringContaining("response key oops"),
        expect.stringContaining('required "a" is not a property'),
        expect.stringContaining("pattern is not JSON"),
      ]),
    );
    expect(checkOpenApiDocument(null)).toEqual(["the document is not an object"]);
  });
});

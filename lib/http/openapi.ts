/**
 * Builds the OpenAPI 3 description of the REST API from the routing table itself and
 * the routed actions' fastest-validator params, so that the document cannot drift
 * from the routes. Pure: knows nothing of Moleculer; the gateway gathers the input.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** An OpenAPI 3.0 Schema Object (a JSON Schema dialect); loose on purpose. */
export type SchemaObject = { [key: string]: JsonValue };

export interface ApiRoute {
  /** GET, POST, PUT, PATCH or DELETE. */
  readonly method: string;
  /** The alias path inside the route, as moleculer-web takes it: `users/:id`. */
  readonly path: string;
  /** The action the alias calls: `users.get`. */
  readonly action: string;
  /** The action's fastest-validator params schema; undefined when the action is not known (yet). */
  readonly params?: Readonly<Record<string, unknown>>;
  readonly description?: string;
  /** The status of a successful answer, when known; otherwise documented as 2XX. */
  readonly successStatus?: number;
}

export interface OpenApiInput {
  readonly routes: readonly ApiRoute[];
  readonly title: string;
  readonly version: string;
  /** The public origin, e.g. https://shoal.example; the paths include the route prefix. */
  readonly serverUrl: string;
  /** The prefix moleculer-web mounts the aliases under. Default `/api`. */
  readonly basePath?: string;
  /** The session cookie's name. Default `shoal_session` (`__Host-shoal_session` when served over https). */
  readonly sessionCookie?: string;
}

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  servers: { url: string }[];
  tags: { name: string }[];
  paths: Record<string, Record<string, JsonValue>>;
  components: {
    schemas: Record<string, SchemaObject>;
    responses: Record<string, JsonValue>;
    parameters: Record<string, JsonValue>;
    securitySchemes: Record<string, JsonValue>;
  };
  security: Record<string, string[]>[];
}

export const OPENAPI_VERSION = "3.0.3";
const HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Splits a moleculer-web alias key (`"GET users/:id"`) into method and path; refuses forms this document cannot describe. */
export function parseAlias(alias: string): { method: string; path: string } {
  const match = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(alias);
  const method = match?.[1].toUpperCase();
  if (!match || !(HTTP_METHODS as readonly string[]).includes(method!)) {
    throw new Error(`OpenAPI: the route alias "${alias}" does not name one HTTP method (${HTTP_METHODS.join(", ")}) and a path.`);
  }
  return { method: method!, path: match[2] };
}

/** `users/:id` under `/api` → `/api/users/{id}`, with the names of its path parameters. */
export function toOpenApiPath(basePath: string, aliasPath: string): { path: string; pathParams: string[] } {
  const pathParams: string[] = [];
  const segments = [...basePath.split("/"), ...aliasPath.split("/")].filter((segment) => segment !== "");
  const converted = segments.map((segment) => {
    if (segment.startsWith(":")) {
      const name = segment.slice(1);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`OpenAPI: the path parameter "${segment}" in "${aliasPath}" is not supported.`);
      pathParams.push(name);
      return `{${name}}`;
    }
    if (/[*?:()+]/.test(segment)) throw new Error(`OpenAPI: the path segment "${segment}" in "${aliasPath}" is not supported.`);
    return segment;
  });
  return { path: `/${converted.join("/")}`, pathParams };
}

// ---------------------------------------------------------------------------------------------
// fastest-validator → OpenAPI Schema Object
// ---------------------------------------------------------------------------------------------

type Rule = Record<string, unknown>;

/** fastest-validator's shorthand: `"string|min:3|optional"`, `"number[]"`. */
function parseShorthand(text: string): Rule {
  const [type = "any", ...options] = text.split("|").map((part) => part.trim());
  const rule: Rule = type.endsWith("[]") ? { type: "array", items: type.slice(0, -2) } : { type };
  for (const option of options) {
    const colon = option.indexOf(":");
    if (colon === -1) {
      if (option.startsWith("no-")) rule[option.slice(3)] = false;
      else rule[option] = true;
      continue;
    }
    const key = option.slice(0, colon).trim();
    const raw = option.slice(colon + 1).trim();
    rule[key] = raw === "true" ? true : raw === "false" ? false : raw !== "" && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
  }
  return rule;
}

/** Brings any rule form (shorthand, multi, `$$type` object) to one object rule, or a list for multi. */
function normaliseRule(rule: unknown): Rule | Rule[] {
  if (typeof rule === "string") return parseShorthand(rule);
  if (Array.isArray(rule)) return rule.map((item) => normaliseRule(item)).flat();
  if (rule !== null && typeof rule === "object") {
    const object = rule as Rule;
    if (typeof object.$$type === "string") {
      const { $$type, ...props } = object;
      return { ...parseShorthand($$type as string), props };
    }
    return object;
  }
  return { type: "any" };
}

function isOptional(rule: Rule | Rule[]): boolean {
  const rules = Array.isArray(rule) ? rule : [rule];
  return rules.some((item) => item.optional === true || item.default !== undefined);
}

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** A RegExp becomes its source (flags other than none cannot be said in OpenAPI and are named in x-pattern-flags). */
function patternOf(pattern: unknown, schema: SchemaObject): void {
  if (pattern instanceof RegExp) {
    schema.pattern = pattern.source;
    if (pattern.flags) schema["x-pattern-flags"] = pattern.flags;
  } else if (typeof pattern === "string" && pattern !== "") {
    schema.pattern = pattern;
  }
  // A RegExp that crossed the transporter arrives as {}: nothing can be said about it.
}

/** Only JSON data passes into the document (no functions, RegExps, Dates or undefined). */
function toJson(value: unknown): JsonValue | undefined {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (Array.isArray(value)) {
    const items = value.map(toJson);
    return items.every((item) => item !== undefined) ? (items as JsonValue[]) : undefined;
  }
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const result: { [key: string]: JsonValue } = {};
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      const converted = toJson(item);
      if (converted === undefined) return undefined;
      result[key] = converted;
    }
    return result;
  }
  return undefined;
}

function enumType(values: readonly JsonValue[]): string | undefined {
  const types = new Set(values.map((value) => (value === null ? "null" : typeof value)));
  if (types.size !== 1) return undefined;
  const [only] = [...types];
  return only === "string" || only === "number" || only === "boolean" ? only : undefined;
}

function stringSchema(rule: Rule, format?: string): SchemaObject {
  const schema: SchemaObject = { type: "string" };
  if (format) schema.format = format;
  if (isNumber(rule.length)) {
    schema.minLength = rule.length;
    schema.maxLength = rule.length;
  }
  if (isNumber(rule.min)) schema.minLength = rule.min;
  if (isNumber(rule.max)) schema.maxLength = rule.max;
  if (rule.empty === false && schema.minLength === undefined) schema.minLength = 1;
  patternOf(rule.pattern, schema);
  if (rule.pattern === undefined) {
    const known: Record<string, string> = {
      alpha: "^[a-zA-Z]*$",
      numeric: "^-?[0-9]+(\\.[0-9]+)?$",
      alphanum: "^[a-zA-Z0-9]*$",
      alphadash: "^[a-zA-Z0-9_-]*$",
      hex: "^([0-9a-fA-F]{2})*$",
    };
    for (const [flag, source] of Object.entries(known)) if (rule[flag] === true) schema.pattern = source;
  }
  const values = toJson(rule.enum);
  if (Array.isArray(values) && values.length > 0) schema.enum = values;
  const notes: string[] = [];
  if (rule.trim === true) notes.push("Leading and trailing whitespace is removed before the checks.");
  else if (rule.trimLeft === true || rule.trimRight === true) notes.push("Surrounding whitespace is partly removed before the checks.");
  if (rule.lowercase === true) notes.push("Converted to lower case.");
  if (rule.uppercase === true) notes.push("Converted to upper case.");
  if (notes.length > 0) schema.description = notes.join(" ");
  if (rule.trim === true) schema["x-trim"] = true;
  return schema;
}

function numberSchema(rule: Rule): SchemaObject {
  const schema: SchemaObject = { type: rule.integer === true ? "integer" : "number" };
  if (isNumber(rule.min)) schema.minimum = rule.min;
  if (isNumber(rule.max)) schema.maximum = rule.max;
  if (rule.positive === true && schema.minimum === undefined) {
    schema.minimum = 0;
    schema.exclusiveMinimum = true;
  }
  if (rule.negative === true && schema.maximum === undefined) {
    schema.maximum = 0;
    schema.exclusiveMaximum = true;
  }
  if (isNumber(rule.equal)) schema.enum = [rule.equal];
  return schema;
}

function objectSchema(properties: Record<string, unknown> | undefined, strict: unknown): SchemaObject {
  const schema: SchemaObject = { type: "object" };
  if (properties) {
    const props: Record<string, JsonValue> = {};
    const required: string[] = [];
    for (const [name, rule] of Object.entries(properties)) {
      if (name.startsWith("$$")) continue;
      const normalised = normaliseRule(rule);
      if (!Array.isArray(normalised) && normalised.type === "forbidden") continue;
      props[name] = toOpenApiSchema(normalised);
      if (!isOptional(normalised)) required.push(name);
    }
    schema.properties = props;
    if (required.length > 0) schema.required = required;
  }
  // "remove" drops unknown keys silently, so they are still accepted; only `true` refuses them.
  if (strict === true) schema.additionalProperties = false;
  return schema;
}

/** Converts one fastest-validator rule (any form) to an OpenAPI 3.0 Schema Object. */
export function toOpenApiSchema(input: unknown): SchemaObject {
  const normalised = normaliseRule(input);
  if (Array.isArray(normalised)) {
    const schema: SchemaObject = { anyOf: normalised.map((rule) => toOpenApiSchema(rule)) };
    if (normalised.some((rule) => rule.nullable === true)) schema.nullable = true;
    return schema;
  }
  const rule = normalised;
  let schema: SchemaObject;
  switch (rule.type) {
    case "string":
      schema = stringSchema(rule);
      break;
    case "email":
      schema = stringSchema({ ...rule, pattern: undefined }, "email");
      break;
    case "url":
      schema = stringSchema({ ...rule, pattern: undefined }, "uri");
      break;
    case "uuid":
      schema = { type: "string", format: "uuid" };
      break;
    case "date":
      schema = { type: "string", format: "date-time" };
      break;
    case "objectID":
      schema = { type: "string", pattern: "^[0-9a-fA-F]{24}$" };
      break;
    case "number":
      schema = numberSchema(rule);
      break;
    case "boolean":
      schema = { type: "boolean" };
      break;
    case "enum": {
      const values = toJson(rule.values);
      schema = Array.isArray(values) ? { enum: values } : {};
      const type = Array.isArray(values) ? enumType(values) : undefined;
      if (type) schema = { type, ...schema };
      break;
    }
    case "equal": {
      const value = toJson(rule.value);
      schema = value === undefined ? {} : { enum: [value] };
      const type = value === undefined ? undefined : enumType([value]);
      if (type) schema = { type, ...schema };
      break;
    }
    case "object": {
      const props = (rule.props ?? rule.properties) as Record<string, unknown> | undefined;
      schema = objectSchema(props && typeof props === "object" ? props : undefined, rule.strict);
      if (isNumber(rule.minProps)) schema.minProperties = rule.minProps;
      if (isNumber(rule.maxProps)) schema.maxProperties = rule.maxProps;
      break;
    }
    case "record":
      schema = { type: "object", additionalProperties: rule.value === undefined ? true : toOpenApiSchema(rule.value) };
      break;
    case "array": {
      schema = { type: "array", items: rule.items === undefined ? {} : toOpenApiSchema(rule.items) };
      if (isNumber(rule.length)) {
        schema.minItems = rule.length;
        schema.maxItems = rule.length;
      }
      if (isNumber(rule.min)) schema.minItems = rule.min;
      if (isNumber(rule.max)) schema.maxItems = rule.max;
      if (rule.empty === false && schema.minItems === undefined) schema.minItems = 1;
      if (rule.unique === true) schema.uniqueItems = true;
      const values = toJson(rule.enum);
      if (Array.isArray(values) && values.length > 0) schema.items = { ...(schema.items as SchemaObject), enum: values };
      break;
    }
    case "tuple": {
      const items = Array.isArray(rule.items) ? rule.items : [];
      schema = { type: "array", minItems: items.length, maxItems: items.length };
      if (items.length > 0) schema.items = { anyOf: items.map((item) => toOpenApiSchema(item)) };
      break;
    }
    default:
      // any, custom, function, class, … : nothing precise can be said.
      schema = {};
  }
  if (rule.nullable === true) schema.nullable = true;
  const fallback = toJson(rule.default);
  if (fallback !== undefined) schema.default = fallback;
  if (typeof rule.description === "string") schema.description = rule.description;
  return schema;
}

/** The params schema as the body object (strict when the action is `$$strict: true`). */
export function paramsToObjectSchema(params: Readonly<Record<string, unknown>>, omit: readonly string[] = []): SchemaObject {
  const properties = Object.fromEntries(Object.entries(params).filter(([name]) => !omit.includes(name)));
  return objectSchema(properties, params.$$strict);
}

// ---------------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------------

const ref = (to: string): { $ref: string } => ({ $ref: to });

function components(sessionCookie: string): OpenApiDocument["components"] {
  const retryAfter = {
    description: "Seconds to wait before trying again.",
    schema: { type: "integer", minimum: 0 },
  };
  const errorContent = { "application/json": { schema: ref("#/components/schemas/Error") } };
  return {
    schemas: {
      Error: {
        type: "object",
        description: "The one shape every error takes.",
        required: ["error"],
        additionalProperties: false,
        properties: {
          error: {
            type: "object",
            required: ["code", "message", "fields"],
            additionalProperties: false,
            properties: {
              code: { type: "string", description: "Stable, lower-case machine code, e.g. validation_failed, csrf_failed, not_found." },
              message: { type: "string", description: "A sentence written for people." },
              fields: {
                type: "object",
                description: "Per-field problems (field name → message); empty when the error is not about fields.",
                additionalProperties: { type: "string" },
              },
            },
          },
        },
      },
    },
    responses: {
      Error: { description: "The request failed; see error.code.", content: errorContent },
      ValidationFailed: { description: "Some fields are missing or invalid (error.code validation_failed, details in error.fields).", content: errorContent },
      Forbidden: {
        description:
          "Refused: not allowed, a cross-site request (origin_not_allowed), or a cookie-authenticated change without a valid X-CSRF-Token (csrf_failed).",
        content: errorContent,
      },
      TooManyRequests: { description: "Rate limited (error.code rate_limited).", headers: { "Retry-After": retryAfter }, content: errorContent },
      Unavailable: { description: "Not available right now; try again shortly.", headers: { "Retry-After": retryAfter }, content: errorContent },
    },
    parameters: {
      CsrfToken: {
        name: "X-CSRF-Token",
        in: "header",
        required: false,
        description:
          "Required when the session comes from the cookie: the token from GET /api/auth/csrf (or from sign-in). Not needed with a bearer token.",
        schema: { type: "string" },
      },
    },
    securitySchemes: {
      sessionCookie: {
        type: "apiKey",
        in: "cookie",
        name: sessionCookie,
        description: "The HttpOnly session cookie set at sign-in. State-changing requests must also send X-CSRF-Token and come from an allowed origin.",
      },
      bearerAuth: {
        type: "http",
        scheme: "bearer",
        description: "The session token returned at sign-in, as `Authorization: Bearer <token>`; no CSRF token is needed.",
      },
      csrfToken: {
        type: "apiKey",
        in: "header",
        name: "X-CSRF-Token",
        description: "The CSRF token bound to the cookie session (GET /api/auth/csrf).",
      },
    },
  };
}

function operationFor(route: ApiRoute, method: string, pathParams: readonly string[]): Record<string, JsonValue> {
  const params = route.params ?? {};
  const operation: Record<string, JsonValue> = {
    operationId: route.action,
    tags: [route.action.split(".")[0]],
    summary: route.action,
    "x-moleculer-action": route.action,
  };
  if (route.description) operation.description = route.description;

  const parameters: JsonValue[] = pathParams.map((name) => {
    const schema = params[name] === undefined ? { type: "string" } : toOpenApiSchema(params[name]);
    return { name, in: "path", required: true, schema };
  });
  const rest = Object.keys(params).filter((name) => !name.startsWith("$$") && !pathParams.includes(name));
  const hasBody = BODY_METHODS.has(method);
  if (!hasBody) {
    for (const name of rest) {
      const rule = normaliseRule(params[name]);
      parameters.push({ name, in: "query", required: !isOptional(rule), schema: toOpenApiSchema(rule) });
    }
  } else {
    parameters.push(ref("#/components/parameters/CsrfToken"));
    // An action not (yet) in the registry: its body cannot be described.
    const schema = route.params === undefined ? { type: "object" } : paramsToObjectSchema(params, pathParams);
    const required = Array.isArray(schema.required) && schema.required.length > 0;
    operation.requestBody = { required, content: { "application/json": { schema } } };
    operation.security = [{}, { bearerAuth: [] }, { sessionCookie: [], csrfToken: [] }];
  }
  if (parameters.length > 0) operation.parameters = parameters;

  const success = route.successStatus === undefined ? "2XX" : String(route.successStatus);
  const responses: Record<string, JsonValue> = {
    [success]: { description: "Success (JSON, or no content for 204)." },
    "422": ref("#/components/responses/ValidationFailed"),
    "429": ref("#/components/responses/TooManyRequests"),
    "503": ref("#/components/responses/Unavailable"),
    "4XX": ref("#/components/responses/Error"),
    "5XX": ref("#/components/responses/Error"),
  };
  if (hasBody) responses["403"] = ref("#/components/responses/Forbidden");
  operation.responses = responses;
  return operation;
}

/** The OpenAPI 3.0 document for the given routes. Throws on a route it cannot describe, or on a duplicate. */
export function buildOpenApiDocument(input: OpenApiInput): OpenApiDocument {
  const basePath = input.basePath ?? "/api";
  const paths: OpenApiDocument["paths"] = {};
  const tags = new Set<string>();
  const operationIds = new Map<string, number>();

  for (const route of input.routes) {
    const method = route.method.toUpperCase();
    if (!(HTTP_METHODS as readonly string[]).includes(method)) throw new Error(`OpenAPI: unsupported method ${route.method} for ${route.path}.`);
    const { path, pathParams } = toOpenApiPath(basePath, route.path);
    const item = (paths[path] ??= {});
    const key = method.toLowerCase();
    if (item[key] !== undefined) throw new Error(`OpenAPI: ${method} ${path} is routed twice.`);
    const operation = operationFor(route, method, pathParams);
    const seen = operationIds.get(route.action) ?? 0;
    operationIds.set(route.action, seen + 1);
    if (seen > 0) operation.operationId = `${route.action}_${seen + 1}`;
    item[key] = operation;
    tags.add(route.action.split(".")[0]);
  }

  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: input.title,
      version: input.version,
      description:
        "Generated from the gateway's routing table and the routed actions' parameter schemas. " +
        "Every error answers with the Error schema. Sign in with a cookie session or a bearer token; " +
        "state-changing requests authenticated by cookie must come from an allowed origin and carry X-CSRF-Token.",
    },
    servers: [{ url: input.serverUrl }],
    tags: [...tags].sort().map((name) => ({ name })),
    paths,
    components: components(input.sessionCookie ?? "shoal_session"),
    security: [{}, { bearerAuth: [] }, { sessionCookie: [] }],
  };
}

// ---------------------------------------------------------------------------------------------
// A structural check (no validator package in the project): what a consumer would trip over.
// ---------------------------------------------------------------------------------------------

function resolvePointer(document: unknown, pointer: string): unknown {
  if (!pointer.startsWith("#/")) return undefined;
  let node: unknown = document;
  for (const raw of pointer.slice(2).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === null || typeof node !== "object" || !Object.prototype.hasOwnProperty.call(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** Problems found in an OpenAPI 3.0 document: required fields, path templates, $refs, responses, JSON-only values. Empty when sound. */
export function checkOpenApiDocument(document: unknown): string[] {
  const problems: string[] = [];
  const doc = document as Partial<OpenApiDocument> | null;
  if (doc === null || typeof doc !== "object") return ["the document is not an object"];
  if (typeof doc.openapi !== "string" || !/^3\.0\.\d+$/.test(doc.openapi)) problems.push(`openapi is not 3.0.x: ${String(doc.openapi)}`);
  if (typeof doc.info?.title !== "string" || typeof doc.info.version !== "string") problems.push("info.title and info.version must be strings");
  if (doc.paths === null || typeof doc.paths !== "object") return [...problems, "paths is missing"];

  const walk = (node: unknown, where: string): void => {
    if (node instanceof RegExp || typeof node === "function" || node === undefined) {
      problems.push(`${where} is not JSON`);
      return;
    }
    if (Array.isArray(node)) node.forEach((item, index) => walk(item, `${where}/${index}`));
    else if (node !== null && typeof node === "object") {
      for (const [key, value] of Object.entries(node)) {
        if (key === "$ref") {
          if (typeof value !== "string" || resolvePointer(document, value) === undefined) problems.push(`${where}: $ref ${String(value)} does not resolve`);
        } else walk(value, `${where}/${key}`);
      }
      const required = (node as { required?: unknown }).required;
      const properties = (node as { properties?: unknown }).properties;
      if (Array.isArray(required) && properties !== null && typeof properties === "object") {
        for (const name of required) if (!(name in properties)) problems.push(`${where}: required "${String(name)}" is not a property`);
      }
    }
  };
  walk(document, "#");

  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith("/")) problems.push(`path ${path} does not start with /`);
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);
    for (const [method, value] of Object.entries(item)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!["get", "put", "post", "delete", "options", "head", "patch", "trace"].includes(method)) {
        if (method !== "parameters" && method !== "summary" && method !== "description" && method !== "servers") problems.push(`${where}: not a method`);
        continue;
      }
      const operation = value as { operationId?: unknown; responses?: unknown; parameters?: unknown; requestBody?: unknown };
      if (typeof operation.operationId === "string") {
        if (operationIds.has(operation.operationId)) problems.push(`${where}: operationId ${operation.operationId} is not unique`);
        operationIds.add(operation.operationId);
      }
      const responses = operation.responses;
      if (responses === null || typeof responses !== "object" || Object.keys(responses).length === 0) problems.push(`${where}: no responses`);
      else {
        for (const [code, response] of Object.entries(responses)) {
          if (!/^(default|[1-5]XX|[1-5][0-9]{2})$/.test(code)) problems.push(`${where}: response key ${code} is not a status`);
          const resolved = (response as { $ref?: string }).$ref ? resolvePointer(document, (response as { $ref: string }).$ref) : response;
          if (typeof (resolved as { description?: unknown } | undefined)?.description !== "string") problems.push(`${where}: response ${code} has no description`);
        }
      }
      const parameters = (Array.isArray(operation.parameters) ? operation.parameters : []).map((parameter: { $ref?: string }) =>
        parameter.$ref ? resolvePointer(document, parameter.$ref) : parameter,
      ) as ({ name?: unknown; in?: unknown; required?: unknown; schema?: unknown } | undefined)[];
      const seen = new Set<string>();
      for (const parameter of parameters) {
        if (!parameter) continue;
        if (typeof parameter.name !== "string" || !["query", "header", "path", "cookie"].includes(String(parameter.in))) {
          problems.push(`${where}: a parameter lacks name or in`);
          continue;
        }
        const key = `${String(parameter.in)}:${parameter.name}`;
        if (seen.has(key)) problems.push(`${where}: parameter ${key} twice`);
        seen.add(key);
        if (parameter.schema === undefined) problems.push(`${where}: parameter ${key} has no schema`);
        if (parameter.in === "path") {
          if (parameter.required !== true) problems.push(`${where}: path parameter ${parameter.name} is not required`);
          if (!templated.includes(parameter.name)) problems.push(`${where}: path parameter ${parameter.name} is not in the path`);
        }
      }
      for (const name of templated) if (!seen.has(`path:${name}`)) problems.push(`${where}: {${name}} is not declared`);
      if (operation.requestBody !== undefined) {
        const content = (operation.requestBody as { content?: unknown }).content;
        if (content === null || typeof content !== "object" || Object.keys(content).length === 0) problems.push(`${where}: requestBody has no content`);
      }
    }
  }
  return problems;
}

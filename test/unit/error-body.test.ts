import { Errors, ServiceBroker } from "moleculer";
import type { GatewayError } from "../../lib/http/error-body";
import { toErrorResponse } from "../../lib/http/error-body";

const GENERIC_500 = "Something went wrong on our side; it has been logged.";

/** What body-parser (via http-errors) passes on for a body it refuses. */
function bodyParserError(status: number, type: string, message: string): GatewayError {
  return Object.assign(new Error(message), { status, statusCode: status, expose: true, type });
}

function expectShape(body: unknown): void {
  expect(Object.keys(body as object)).toEqual(["error"]);
  const error = (body as { error: Record<string, unknown> }).error;
  expect(Object.keys(error).sort()).toEqual(["code", "fields", "message"]);
  expect(typeof error.code).toBe("string");
  expect(typeof error.message).toBe("string");
  expect(error.fields).toEqual(expect.any(Object));
  expect(Array.isArray(error.fields)).toBe(false);
  for (const value of Object.values(error.fields as object)) expect(typeof value).toBe("string");
}

describe("toErrorResponse: Moleculer validation errors", () => {
  let validationError: Errors.ValidationError;

  beforeAll(async () => {
    // A real ValidationError, produced the way a client produces it: bad params to an action.
    const broker = new ServiceBroker({ logger: false });
    broker.createService({
      name: "users",
      actions: {
        create: {
          params: { $$strict: true, username: { type: "string", min: 3 }, email: { type: "email" } },
          handler: () => "created",
        },
      },
    });
    await broker.start();
    try {
      await broker.call("users.create", { username: "al", isAdmin: true });
    } catch (error) {
      validationError = error as Errors.ValidationError;
    } finally {
      await broker.stop();
    }
  });

  it("answers 422 validation_failed with one message per field", () => {
    expect(validationError).toBeInstanceOf(Errors.ValidationError);
    const { status, body } = toErrorResponse(validationError);
    expect(status).toBe(422);
    expect(body.error.code).toBe("validation_failed");
    expect(body.error.message).toBe("Some fields are missing or invalid.");
    expect(body.error.fields).toEqual({
      username: "The 'username' field length must be greater than or equal to 3 characters long.",
      email: "The 'email' field is required.",
      _: "unknown fields: 'isAdmin'.",
    });
    expectShape(body);
  });

  it("keeps the first message when a field has several problems", () => {
    const error = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
      { field: "email", message: "The 'email' field is required.", type: "required" },
      { field: "email", message: "The 'email' field must be a valid e-mail.", type: "email" },
    ]);
    expect(toErrorResponse(error).body.error.fields).toEqual({ email: "The 'email' field is required." });
  });

  it("names a refused `__proto__` field in the body like any other", () => {
    const error = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
      { field: "__proto__", message: "is not allowed as a field name", type: "forbiddenKey" },
    ]);
    const { status, body } = toErrorResponse(error);
    expect(status).toBe(422);
    expect(JSON.stringify(body.error.fields)).toBe('{"__proto__":"is not allowed as a field name"}');
  });

  it("still answers 422 when the validation data is missing or odd", () => {
    for (const data of [undefined, null, "oops", [{}]]) {
      const { status, body } = toErrorResponse({ code: 422, type: "VALIDATION_ERROR", message: "x", data });
      expect(status).toBe(422);
      expectShape(body);
    }
    expect(toErrorResponse({ code: 422, type: "VALIDATION_ERROR", data: [{}] }).body.error.fields).toEqual({ _: "is invalid" });
  });
});

describe("toErrorResponse: our own errors", () => {
  it("passes status, code, message and fields through", () => {
    const error = new Errors.MoleculerError("That username is taken.", 409, "conflict", { fields: { username: "is taken" } });
    expect(toErrorResponse(error)).toEqual({
      status: 409,
      body: { error: { code: "conflict", message: "That username is taken.", fields: { username: "is taken" } } },
    });
  });

  it("gives empty fields when there are none", () => {
    const error = new Errors.MoleculerError("The user was not found.", 404, "not_found");
    expect(toErrorResponse(error)).toEqual({
      status: 404,
      body: { error: { code: "not_found", message: "The user was not found.", fields: {} } },
    });
  });

  it("passes a deliberate 503 message through", () => {
    const error = new Errors.MoleculerError("Uploads are paused for maintenance.", 503, "unavailable");
    expect(toErrorResponse(error)).toMatchObject({
      status: 503,
      body: { error: { code: "unavailable", message: "Uploads are paused for maintenance." } },
    });
  });

  it("keeps the message of a Moleculer 4xx error with an upper-case type, with its type lower-cased", () => {
    const { status, body } = toErrorResponse({ code: 404, type: "NOT_FOUND", message: "Not found" });
    expect(status).toBe(404);
    expect(body.error).toEqual({ code: "not_found", message: "Not found", fields: {} });
  });
});

describe("toErrorResponse: Moleculer availability errors", () => {
  it("answers 503 when the service is not found or not available", () => {
    for (const error of [
      new Errors.ServiceNotFoundError({ action: "media.upload", nodeID: "node-7" }),
      new Errors.ServiceNotAvailableError({ action: "media.upload", nodeID: "node-7" }),
    ]) {
      const { status, body } = toErrorResponse(error);
      expect(status).toBe(503);
      expect(body.error.code).toBe("unavailable");
      expect(body.error.message).not.toContain("media.upload");
      expect(body.error.message).not.toContain("node-7");
      expectShape(body);
    }
  });

  it("answers 504 on a request timeout", () => {
    const { status, body } = toErrorResponse(new Errors.RequestTimeoutError({ action: "media.list", nodeID: "node-7" }));
    expect(status).toBe(504);
    expect(body.error.code).toBe("timeout");
    expect(body.error.message).not.toContain("node-7");
  });
});

describe("toErrorResponse: body-parser errors", () => {
  it("answers 413 for a body over the limit", () => {
    const { status, body } = toErrorResponse(bodyParserError(413, "entity.too.large", "request entity too large"));
    expect(status).toBe(413);
    expect(body.error).toEqual({ code: "payload_too_large", message: "The request body is too large.", fields: {} });
  });

  it("answers 400 for malformed JSON without echoing the parser's message", () => {
    const error = bodyParserError(400, "entity.parse.failed", "Unexpected token } in JSON at position 12");
    const { status, body } = toErrorResponse(error);
    expect(status).toBe(400);
    expect(body.error).toEqual({ code: "invalid_json", message: "The request body is not valid JSON.", fields: {} });
  });

  it("answers 415 for an unsupported encoding or charset", () => {
    expect(toErrorResponse(bodyParserError(415, "encoding.unsupported", 'unsupported content encoding "br"')).status).toBe(415);
    expect(toErrorResponse(bodyParserError(415, "charset.unsupported", 'unsupported charset "KOI8-R"')).status).toBe(415);
  });
});

describe("toErrorResponse: unexpected errors do not leak", () => {
  const SQL = "ER_NO_SUCH_TABLE: Table 'shoal_membership.users' doesn't exist: select * from users where id = ?";

  it("turns an unexpected Error carrying SQL into a generic 500", () => {
    const error = Object.assign(new Error(SQL), { code: "ER_NO_SUCH_TABLE", errno: 1146, sqlState: "42S02" });
    const { status, body } = toErrorResponse(error);
    expect(status).toBe(500);
    expect(body.error).toEqual({ code: "internal", message: GENERIC_500, fields: {} });
    expect(JSON.stringify(body)).not.toMatch(/select|users|ER_NO_SUCH_TABLE|shoal_membership/i);
  });

  it("turns a plain Error and a network error into a generic 500", () => {
    for (const error of [
      new Error("Cannot read properties of undefined (reading 'id')"),
      Object.assign(new Error("connect ECONNREFUSED 10.0.3.7:3306"), { code: "ECONNREFUSED", errno: -111 }),
    ]) {
      const { status, body } = toErrorResponse(error);
      expect(status).toBe(500);
      expect(body.error.message).toBe(GENERIC_500);
    }
  });

  it("does not leak the message of a 5xx Moleculer error with an upper-case type", () => {
    const error = new Errors.MoleculerServerError(SQL, 500, "ER_NO_SUCH_TABLE", { sql: "select * from users" });
    const { status, body } = toErrorResponse(error);
    expect(status).toBe(500);
    expect(body.error).toEqual({ code: "internal", message: GENERIC_500, fields: {} });
  });

  it("does not leak the message of a MoleculerError with no type (default code 500)", () => {
    const { status, body } = toErrorResponse(new Errors.MoleculerError(SQL));
    expect(status).toBe(500);
    expect(body.error.message).toBe(GENERIC_500);
  });

  it("answers a generic 503 for a 503 with an upper-case type, without its message", () => {
    const error = new Errors.MoleculerRetryableError("redis at 10.0.3.9:6379 refused: " + SQL, 503, "CACHE_DOWN");
    const { status, body } = toErrorResponse(error);
    expect(status).toBe(503);
    expect(body.error.code).toBe("unavailable");
    expect(body.error.message).not.toContain("10.0.3.9");
  });

  it("turns a status outside 400-599 into a generic 500 even with a lower-case type", () => {
    for (const code of [200, 302, 1146]) {
      const { status, body } = toErrorResponse({ code, type: "whatever", message: SQL });
      expect(status).toBe(500);
      expect(body.error.message).toBe(GENERIC_500);
    }
  });
});

describe("toErrorResponse: one shape for every error", () => {
  const cases: [string, GatewayError][] = [
    ["validation", new Errors.ValidationError("bad", "VALIDATION_ERROR", [{ field: "a", message: "b", type: "c" }])],
    ["own error", new Errors.MoleculerError("Taken.", 409, "conflict", { fields: { username: "is taken" } })],
    ["own error without data", new Errors.MoleculerError("Gone.", 404, "not_found")],
    ["service not found", new Errors.ServiceNotFoundError({ action: "x.y" })],
    ["timeout", new Errors.RequestTimeoutError({ action: "x.y", nodeID: "n" })],
    ["too large", bodyParserError(413, "entity.too.large", "request entity too large")],
    ["bad json", bodyParserError(400, "entity.parse.failed", "Unexpected end of JSON input")],
    ["plain Error", new Error("boom")],
    ["5xx upper-case", new Errors.MoleculerServerError("boom", 502, "BAD_GATEWAY")],
    ["4xx upper-case", { code: 401, type: "UNAUTHORIZED", message: "Unauthorized" }],
    ["status only", { status: 404, message: "Not Found" }],
    ["empty object", {}],
  ];

  it.each(cases)("%s → {error:{code,message,fields}} with a 4xx/5xx status", (_name, error) => {
    const { status, body } = toErrorResponse(error);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThanOrEqual(599);
    expectShape(body);
  });
});

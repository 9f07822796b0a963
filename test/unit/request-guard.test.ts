import { guardStateChange } from "../../lib/auth/request-guard";
import type { GuardedRequest } from "../../lib/auth/request-guard";
import { csrfTokenFor } from "../../lib/auth/session-tokens";
import { AppError } from "../../lib/errors";

const SECRET = "a test secret that is at least thirty-two characters long";
const SITE = "https://shoal.example";
const ALLOWED = [SITE, "https://app.shoal.example"];
const SESSION_ID = "a".repeat(64);
const OTHER_SESSION_ID = "b".repeat(64);
const validToken = csrfTokenFor(SECRET, SESSION_ID);

const cookie = { id: SESSION_ID, via: "cookie" } as const;
const bearer = { id: SESSION_ID, via: "bearer" } as const;

function request(overrides: Partial<GuardedRequest>): GuardedRequest {
  return { method: "POST", origin: SITE, referer: undefined, csrfToken: validToken, session: cookie, ...overrides };
}

/** "pass", or the code of the 403 the guard throws. */
function outcome(req: GuardedRequest, allowed: readonly string[] = ALLOWED, secret = SECRET): string {
  try {
    guardStateChange(req, allowed, secret);
    return "pass";
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    expect(error.status).toBe(403);
    expect(error.message).not.toBe("");
    return error.code;
  }
}

describe("safe methods are never guarded", () => {
  it.each(["GET", "HEAD", "OPTIONS", "get", "options"])("%s from a foreign origin, by cookie, without a token passes", (method) => {
    expect(outcome(request({ method, origin: "https://evil.example", csrfToken: undefined }))).toBe("pass");
  });
});

describe("state-changing requests", () => {
  it.each<[string, Partial<GuardedRequest>, string]>([
    // Cookie sessions: an allowed origin and this session's token are both required.
    ["cookie, allowed Origin, valid token", {}, "pass"],
    ["cookie, second allowed origin", { origin: "https://app.shoal.example" }, "pass"],
    ["cookie, Origin with explicit default port", { origin: "https://shoal.example:443" }, "pass"],
    ["cookie, DELETE", { method: "DELETE" }, "pass"],
    ["cookie, lower-case method", { method: "put" }, "pass"],
    ["cookie, no Origin but allowed Referer", { origin: undefined, referer: `${SITE}/settings?tab=password` }, "pass"],
    ["cookie, Origin 'null' and allowed Referer", { origin: "null", referer: `${SITE}/page` }, "pass"],
    ["cookie, no token", { csrfToken: undefined }, "csrf_failed"],
    ["cookie, empty token", { csrfToken: "" }, "csrf_failed"],
    ["cookie, token of another session", { csrfToken: csrfTokenFor(SECRET, OTHER_SESSION_ID) }, "csrf_failed"],
    ["cookie, token signed with another secret", { csrfToken: csrfTokenFor("another secret that is also thirty-two chars+", SESSION_ID) }, "csrf_failed"],
    ["cookie, token without a signature", { csrfToken: validToken.split(".")[0] }, "csrf_failed"],
    ["cookie, token with an extra part", { csrfToken: `${validToken}.x` }, "csrf_failed"],
    ["cookie, token with a changed signature", { csrfToken: `${validToken.slice(0, -1)}${validToken.endsWith("A") ? "B" : "A"}` }, "csrf_failed"],
    ["cookie, token of the anonymous visitor", { csrfToken: csrfTokenFor(SECRET, "anonymous") }, "csrf_failed"],
    ["cookie, no Origin nor Referer", { origin: undefined }, "origin_not_allowed"],
    ["cookie, Origin 'null' and no Referer", { origin: "null" }, "origin_not_allowed"],
    ["cookie, foreign Origin", { origin: "https://evil.example" }, "origin_not_allowed"],
    ["cookie, foreign Origin and allowed Referer (Origin wins)", { origin: "https://evil.example", referer: `${SITE}/` }, "origin_not_allowed"],
    ["cookie, allowed Origin and foreign Referer (Origin wins)", { referer: "https://evil.example/" }, "pass"],
    ["cookie, foreign Referer", { origin: undefined, referer: "https://evil.example/shoal.example" }, "origin_not_allowed"],
    ["cookie, look-alike host", { origin: "https://shoal.example.evil.example" }, "origin_not_allowed"],
    ["cookie, same host over http", { origin: "http://shoal.example" }, "origin_not_allowed"],
    ["cookie, same host on another port", { origin: "https://shoal.example:8443" }, "origin_not_allowed"],
    ["cookie, malformed Origin", { origin: "not a url" }, "origin_not_allowed"],
    ["cookie, malformed Referer", { origin: undefined, referer: "::::" }, "origin_not_allowed"],
    ["cookie, foreign origin and no token (origin checked first)", { origin: "https://evil.example", csrfToken: undefined }, "origin_not_allowed"],
    // Bearer tokens are not sent by browsers on their own: no CSRF token or origin needed, but a named origin must be allowed.
    ["bearer, no token, no Origin", { session: bearer, origin: undefined, csrfToken: undefined }, "pass"],
    ["bearer, no token, allowed Origin", { session: bearer, csrfToken: undefined }, "pass"],
    ["bearer, foreign Origin", { session: bearer, origin: "https://evil.example" }, "origin_not_allowed"],
    // Anonymous requests (sign-up, sign-in): a named origin must be allowed, else nothing is required.
    ["anonymous, no Origin", { session: undefined, origin: undefined, csrfToken: undefined }, "pass"],
    ["anonymous, allowed Origin", { session: undefined, csrfToken: undefined }, "pass"],
    ["anonymous, foreign Origin (login CSRF)", { session: undefined, origin: "https://evil.example", csrfToken: undefined }, "origin_not_allowed"],
    ["anonymous, foreign Referer", { session: undefined, origin: undefined, referer: "https://evil.example/x", csrfToken: undefined }, "origin_not_allowed"],
  ])("%s → %s", (_what, overrides, expected) => {
    expect(outcome(request(overrides))).toBe(expected);
  });

  test("a token is valid only with the secret that signed it", () => {
    expect(outcome(request({}), ALLOWED, "a different secret of thirty-two characters or more")).toBe("csrf_failed");
  });

  test("with no allowed origins, any named origin is refused", () => {
    expect(outcome(request({ session: undefined }), [])).toBe("origin_not_allowed");
  });

  test("each CSRF token is fresh, and all of a session's tokens are accepted", () => {
    const tokens = [csrfTokenFor(SECRET, SESSION_ID), csrfTokenFor(SECRET, SESSION_ID)];
    expect(tokens[0]).not.toBe(tokens[1]);
    for (const csrfToken of tokens) expect(outcome(request({ csrfToken }))).toBe("pass");
  });
});

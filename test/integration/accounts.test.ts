/**
 * Accounts, sessions and API security against real embedded nodes over HTTP: sign-up,
 * sign-in, sign-out, password change, deletion, input refusals, CSRF and origin checks,
 * security headers and cookies, rate limits, and the audit log.
 */
import { HttpClient, expectErrorBody } from "../support/http-client";
import type { AccountView, ApiResponse, SignedInBody } from "../support/http-client";
import { startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

/** Where browsers reach the main test node; every request from its "browser" says it comes from here. */
const PUBLIC_URL = "http://shoal.test";
const EVIL_ORIGIN = "https://evil.example";

let node: RunningNode;

/** A browser with no cookies yet, on the main node's site. */
function browser(): HttpClient {
  return new HttpClient(node.baseUrl, { origin: PUBLIC_URL });
}

interface Credentials {
  readonly username: string;
  readonly email: string;
  readonly password: string;
}

let counter = 0;
/** Fresh, valid credentials (unique per call). */
function credentials(prefix = "member"): Credentials {
  counter++;
  return { username: `${prefix}_${counter}`, email: `${prefix}.${counter}@example.test`, password: `long enough secret ${counter}` };
}

async function register(client: HttpClient, account: Credentials): Promise<SignedInBody> {
  const answer = await client.post<SignedInBody>("/api/auth/register", account);
  expect({ status: answer.status, text: answer.status === 201 ? "" : answer.text }).toEqual({ status: 201, text: "" });
  return answer.body;
}

async function login(client: HttpClient, loginName: string, password: string): Promise<ApiResponse<SignedInBody>> {
  return client.post<SignedInBody>("/api/auth/login", { login: loginName, password });
}

/** GET /api/users/me with a bearer token, from a client without cookies. */
async function meWithToken(token: string): Promise<ApiResponse<{ user: AccountView }>> {
  return new HttpClient(node.baseUrl, { origin: null }).get<{ user: AccountView }>("/api/users/me", { bearer: token });
}

function retryAfterSeconds(answer: ApiResponse): number {
  const value = answer.headers.get("retry-after");
  expect(value).toMatch(/^\d+$/);
  return Number(value);
}

beforeAll(async () => {
  node = await startNode({
    SHOAL_PUBLIC_URL: PUBLIC_URL,
    // All requests come from 127.0.0.1: the per-address limits get their own nodes below.
    RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000",
    RATE_LOGIN_FAILURES_PER_IP_PER_HOUR: "1000",
  });
});

afterAll(async () => {
  await stopAllNodes();
});

describe("sign-up, sign-in and sign-out", () => {
  test("register answers 201 with the account, a token, a CSRF token and an HttpOnly SameSite=Lax cookie; after logout the cookie and token are refused", async () => {
    const client = browser();
    const account = credentials("ada");
    const answer = await client.post<SignedInBody>("/api/auth/register", account);
    expect(answer.status).toBe(201);
    expect(answer.body).toEqual({
      user: {
        id: expect.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/),
        username: account.username,
        email: account.email,
        role: "user",
        quotaBytes: 5 * 1024 ** 3,
        usedBytes: 0,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      },
      token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      csrfToken: expect.any(String),
    });
    expect(answer.text).not.toMatch(/argon2|password|hash/i);
    const { token, csrfToken, user } = answer.body;

    expect(answer.setCookies).toHaveLength(1);
    const [cookie] = answer.setCookies;
    expect(cookie?.name).toBe("shoal_session");
    expect(cookie?.value).toBe(token);
    expect(cookie?.attributes).toEqual({ "max-age": "604800", path: "/", httponly: "", samesite: "Lax" });

    const me = await client.get<{ user: AccountView }>("/api/users/me");
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ user });

    const logout = await client.post("/api/auth/logout", undefined, { csrf: csrfToken });
    expect(logout.status).toBe(204);
    expect(logout.text).toBe("");
    expect(logout.setCookies.map((c) => [c.name, c.value, c.attributes["max-age"]])).toEqual([["shoal_session", "", "0"]]);
    expect(client.cookies.size).toBe(0);

    expectErrorBody(await client.get("/api/users/me"), 401, "unauthenticated");
    // The browser forgot the cookie; a copy of it (or of the token) must not work either.
    const replay = browser();
    replay.cookies.set("shoal_session", token);
    expectErrorBody(await replay.get("/api/users/me"), 401, "unauthenticated");
    expectErrorBody(await meWithToken(token), 401, "unauthenticated");
  });

  test("sign-in works by username or email in any letter case, each time with a new session", async () => {
    const account = { ...credentials("Grace"), username: `Grace_Hopper_${counter}` };
    const { user } = await register(browser(), account);

    const byName = await login(browser(), account.username.toUpperCase(), account.password);
    const byEmail = await login(browser(), `  ${account.email.toUpperCase()}  `, account.password);
    for (const answer of [byName, byEmail]) {
      expect(answer.status).toBe(200);
      expect(answer.body.user).toEqual(user);
      expect(answer.setCookies.map((c) => c.name)).toEqual(["shoal_session"]);
      expect((await meWithToken(answer.body.token)).status).toBe(200);
    }
    expect(byName.body.token).not.toBe(byEmail.body.token);
  });

  test("a wrong password and an unknown login get the same 401 invalid_credentials and no cookie", async () => {
    const account = credentials("wrongpw");
    await register(browser(), account);
    const wrongPassword = await login(browser(), account.username, "not the password at all");
    const unknownLogin = await login(browser(), `nobody_${counter}`, account.password);
    const wrong = expectErrorBody(wrongPassword, 401, "invalid_credentials", {});
    const unknown = expectErrorBody(unknownLogin, 401, "invalid_credentials", {});
    expect(unknown).toEqual(wrong);
    expect(wrongPassword.setCookies).toEqual([]);
    expect(unknownLogin.setCookies).toEqual([]);
  });

  test.each(["' OR 1=1 --", "admin'--", "\" OR \"\"=\"", "x'; DROP TABLE users; --"])("a SQL-shaped login %p simply fails with 401", async (shaped) => {
    const answer = await login(browser(), shaped, "' OR '1'='1");
    expectErrorBody(answer, 401, "invalid_credentials", {});
  });

  test("HTML in a username is refused with 422; unusual but valid text is stored and returned literally", async () => {
    const html = await browser().post("/api/auth/register", { ...credentials("html"), username: "<script>alert(1)</script>" });
    expectErrorBody(html, 422, "validation_failed", { username: expect.any(String) });
    expect(html.text).not.toContain("<script>");

    counter++;
    const literal = {
      username: `Zoë-ß.李_${counter}`,
      email: `o'brien+<b>&"q"${counter}@example.test`,
      password: `pässwörd </script> ${counter}`,
    };
    const client = browser();
    const { user } = await register(client, literal);
    expect(user.username).toBe(literal.username);
    expect(user.email).toBe(literal.email);
    const me = await client.get<{ user: AccountView }>("/api/users/me");
    expect(me.headers.get("content-type")).toMatch(/^application\/json/);
    expect(me.body.user).toMatchObject({ username: literal.username, email: literal.email });
    expect((await login(browser(), literal.email, literal.password)).status).toBe(200);
  });

  test("two simultaneous sign-ups for one username: one is 201, the other 409 conflict, never a 500", async () => {
    const first = credentials("racer");
    const second = { ...credentials("racer"), username: first.username.toUpperCase() };
    const answers = await Promise.all([browser().post("/api/auth/register", first), browser().post("/api/auth/register", second)]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 409]);
    expectErrorBody(answers.find((answer) => answer.status === 409)!, 409, "conflict");
  });

  test.each([
    ["Hindi", "अमित"],
    ["Tamil", "தமிழ்"],
    ["a decomposed accent (e + U+0308)", "Zoe\u0308"],
  ])("a username in %s (%s) is accepted like any other name in letters", async (_script, name) => {
    const answer = await browser().post<SignedInBody>("/api/auth/register", { ...credentials("intl"), username: `${name}${counter}` });
    expect({ status: answer.status, text: answer.status === 201 ? "" : answer.text }).toEqual({ status: 201, text: "" });
    expect(answer.body.user.username).toBe(`${name}${counter}`.normalize("NFC"));
  });
});

describe("sign-in lockout", () => {
  test("after ten failed sign-ins the eleventh, even with the right password, is 429 too_many_attempts with Retry-After; other accounts are unaffected", async () => {
    const target = credentials("locked");
    const bystander = credentials("unlocked");
    await register(browser(), target);
    await register(browser(), bystander);
    for (let i = 0; i < 10; i++) expectErrorBody(await login(browser(), target.username, `guess number ${i}`), 401, "invalid_credentials");
    const eleventh = await login(browser(), target.email, target.password);
    expectErrorBody(eleventh, 429, "too_many_attempts", {});
    expect(retryAfterSeconds(eleventh)).toBeGreaterThan(3500);
    expect(eleventh.setCookies).toEqual([]);
    expect((await login(browser(), bystander.username, bystander.password)).status).toBe(200);
  });

  test("thirty simultaneous wrong guesses get no more than ten password checks; the rest are 429 too_many_attempts", async () => {
    const target = credentials("burst");
    await register(browser(), target);
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => login(browser(), target.username, `parallel guess ${i}`)));
    for (const answer of answers) expect([401, 429]).toContain(answer.status);
    const checked = answers.filter((answer) => answer.status === 401).length;
    // Each 401 is a password that was checked; a correct limit lets ten through and refuses the rest.
    expect(checked).toBeLessThanOrEqual(10);
  });
});

describe("password change", () => {
  test("the old password stops working, the new one works, other sessions end and the current one stays", async () => {
    const account = credentials("changer");
    const current = browser();
    const { csrfToken } = await register(current, account);
    const other = await login(browser(), account.username, account.password);
    expect(other.status).toBe(200);
    // Used once, so that its session sits in the cache when the password changes.
    expect((await meWithToken(other.body.token)).status).toBe(200);

    const newPassword = "an entirely new passphrase";
    const wrongCurrent = await current.put("/api/users/me/password", { currentPassword: "not it at all", newPassword }, { csrf: csrfToken });
    expectErrorBody(wrongCurrent, 422, "validation_failed", { currentPassword: expect.any(String) });
    const weakNew = await current.put("/api/users/me/password", { currentPassword: account.password, newPassword: "1234567890" }, { csrf: csrfToken });
    expectErrorBody(weakNew, 422, "validation_failed", { newPassword: expect.any(String) });
    expect((await meWithToken(other.body.token)).status).toBe(200);

    const changed = await current.put("/api/users/me/password", { currentPassword: account.password, newPassword }, { csrf: csrfToken });
    expect(changed.status).toBe(204);

    expectErrorBody(await meWithToken(other.body.token), 401, "unauthenticated");
    expect((await current.get("/api/users/me")).status).toBe(200);
    expectErrorBody(await login(browser(), account.username, account.password), 401, "invalid_credentials");
    expect((await login(browser(), account.username, newPassword)).status).toBe(200);
  });
});

describe("account deletion", () => {
  test("a wrong password is 422 and deletes nothing; the right one is 204, after which the token, the profile and sign-in are gone", async () => {
    const account = credentials("leaver");
    const client = browser();
    const { user, csrfToken } = await register(client, account);
    const second = await login(browser(), account.email, account.password);
    expect((await browser().get(`/api/users/${user.id}`)).status).toBe(200);

    const wrong = await client.delete("/api/users/me", { password: "not my password" }, { csrf: csrfToken });
    expectErrorBody(wrong, 422, "validation_failed", { password: expect.any(String) });
    expect((await client.get("/api/users/me")).status).toBe(200);
    expect((await meWithToken(second.body.token)).status).toBe(200);
    expect((await login(browser(), account.username, account.password)).status).toBe(200);

    const deleted = await client.delete("/api/users/me", { password: account.password }, { csrf: csrfToken });
    expect(deleted.status).toBe(204);
    expect(deleted.setCookies.map((c) => [c.name, c.value])).toEqual([["shoal_session", ""]]);

    expectErrorBody(await meWithToken(second.body.token), 401, "unauthenticated");
    const replay = browser();
    replay.cookies.set("shoal_session", second.body.token);
    expectErrorBody(await replay.get("/api/users/me"), 401, "unauthenticated");
    expectErrorBody(await login(browser(), account.username, account.password), 401, "invalid_credentials");
    expectErrorBody(await browser().get(`/api/users/${user.id}`), 404, "not_found");
  });
});

describe("registration refusals", () => {
  let taken: Credentials;
  beforeAll(async () => {
    taken = { ...credentials("taken"), username: `Taken_Name_${counter}` };
    await register(browser(), taken);
  });

  type Row = [what: string, status: number, code: string, fields: Record<string, unknown>, body: () => Record<string, unknown>];
  const rows: Row[] = [
    ["a taken username in another letter case", 409, "conflict", { username: "is taken" }, () => ({ ...credentials(), username: taken.username.toLowerCase() })],
    ["a taken email in another letter case", 409, "conflict", { email: "is already registered" }, () => ({ ...credentials(), email: taken.email.toUpperCase() })],
    ["a 9-character password", 422, "validation_failed", { password: "must be at least 10 characters" }, () => ({ ...credentials(), password: "nine char" })],
    ["a common password (1234567890)", 422, "validation_failed", { password: expect.stringMatching(/common/) }, () => ({ ...credentials(), password: "1234567890" })],
    ["a common password in capitals (QWERTYUIOP)", 422, "validation_failed", { password: expect.stringMatching(/common/) }, () => ({ ...credentials(), password: "QWERTYUIOP" })],
    ["the username as password", 422, "validation_failed", { password: "must not be your username or email" }, () => {
      const fresh = credentials("samename");
      return { ...fresh, password: fresh.username.toUpperCase() };
    }],
    ["the email as password", 422, "validation_failed", { password: "must not be your username or email" }, () => {
      const fresh = credentials("sameemail");
      return { ...fresh, password: fresh.email };
    }],
    ["a 257-character password", 422, "validation_failed", { password: "must be at most 256 characters" }, () => ({ ...credentials(), password: "p".repeat(257) })],
    ["an unknown field (role: admin)", 422, "validation_failed", { _: expect.stringContaining("role") }, () => ({ ...credentials(), role: "admin" })],
    ["wrong types", 422, "validation_failed", { username: expect.any(String), email: expect.any(String), password: expect.any(String) }, () => ({
      username: 42,
      email: ["x@example.test"],
      password: { value: "long enough secret" },
    })],
    ["missing fields", 422, "validation_failed", { email: expect.any(String), password: expect.any(String) }, () => ({ username: credentials().username })],
    ["a malformed email", 422, "validation_failed", { email: expect.any(String) }, () => ({ ...credentials(), email: "not an email" })],
  ];

  test.each(rows)("%s is refused with %i %s naming the field, and no account is made", async (_what, status, code, fields, makeBody) => {
    const body = makeBody();
    const answer = await browser().post("/api/auth/register", body);
    expectErrorBody(answer, status, code, fields);
    expect(answer.setCookies).toEqual([]);
    if (typeof body.username === "string" && typeof body.password === "string" && status === 422) {
      expectErrorBody(await login(browser(), body.username, body.password), 401, "invalid_credentials");
    }
  });

  test("an unknown query parameter is refused too", async () => {
    const answer = await browser().post("/api/auth/register?role=admin", credentials());
    expectErrorBody(answer, 422, "validation_failed", { _: expect.stringContaining("role") });
  });

  test("the taken account is unchanged after the refusals", async () => {
    const answer = await login(browser(), taken.username, taken.password);
    expect(answer.status).toBe(200);
    expect(answer.body.user).toMatchObject({ username: taken.username, email: taken.email, role: "user" });
  });
});

describe("malformed request bodies", () => {
  const tenMegabytes = JSON.stringify({ ...credentials(), padding: "x".repeat(10 * 1024 * 1024) });
  const invalidUtf8 = Buffer.concat([Buffer.from('{"username":"bad'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('","email":"b@example.test","password":"long enough secret"}')]);
  const rows: Array<[what: string, status: number, code: string, body: string | Uint8Array]> = [
    ["a 10 MB JSON body", 413, "payload_too_large", tenMegabytes],
    ["invalid JSON", 400, "invalid_json", '{"username": "x", '],
    ["a bare JSON string (not an object)", 400, "invalid_json", '"just a string"'],
    ["invalid UTF-8 bytes in a JSON body", 400, "invalid_encoding", invalidUtf8],
  ];

  test.each(rows)("%s is answered %i %s", async (_what, status, code, body) => {
    expectErrorBody(await browser().post("/api/auth/register", undefined, { body }), status, code, {});
  });

  test("400 and 413 answers to malformed or oversized bodies carry the security headers too (CSP, nosniff, X-Frame-Options)", async () => {
    const seen: Record<string, unknown> = {};
    for (const [what, , , body] of rows) {
      const answer = await browser().post("/api/auth/register", undefined, { body });
      seen[what] = {
        csp: answer.headers.get("content-security-policy"),
        nosniff: answer.headers.get("x-content-type-options"),
        frames: answer.headers.get("x-frame-options"),
      };
    }
    const expected = { csp: expect.stringContaining("frame-ancestors 'none'"), nosniff: "nosniff", frames: "DENY" };
    expect(seen).toEqual(Object.fromEntries(rows.map(([what]) => [what, expected])));
  });
});

describe("CSRF and origin checks", () => {
  let victim: HttpClient;
  let victimSession: SignedInBody;
  let otherSession: SignedInBody;

  beforeAll(async () => {
    victim = browser();
    victimSession = await register(victim, credentials("victim"));
    otherSession = await register(browser(), credentials("bystander"));
  });

  async function stillSignedIn(): Promise<void> {
    const me = await victim.get<{ user: AccountView }>("/api/users/me");
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(victimSession.user.id);
  }

  test("a cookie-authenticated sign-out without X-CSRF-Token is 403 csrf_failed and the session keeps working", async () => {
    expectErrorBody(await victim.post("/api/auth/logout"), 403, "csrf_failed", {});
    await stillSignedIn();
  });

  test("a CSRF token of another session is 403 csrf_failed", async () => {
    expectErrorBody(await victim.post("/api/auth/logout", undefined, { csrf: otherSession.csrfToken }), 403, "csrf_failed", {});
    const anonymousToken = await browser().csrfToken();
    expectErrorBody(await victim.post("/api/auth/logout", undefined, { csrf: anonymousToken }), 403, "csrf_failed", {});
    await stillSignedIn();
  });

  test("a valid token from a foreign Origin is 403 origin_not_allowed", async () => {
    const answer = await victim.post("/api/auth/logout", undefined, { csrf: victimSession.csrfToken, origin: EVIL_ORIGIN });
    expectErrorBody(answer, 403, "origin_not_allowed", {});
    const viaReferer = await victim.post("/api/auth/logout", undefined, {
      csrf: victimSession.csrfToken,
      origin: null,
      headers: { Referer: `${EVIL_ORIGIN}/attack.html` },
    });
    expectErrorBody(viaReferer, 403, "origin_not_allowed", {});
    await stillSignedIn();
  });

  test("a valid token without Origin or Referer is 403 origin_not_allowed", async () => {
    const answer = await victim.post("/api/auth/logout", undefined, { csrf: victimSession.csrfToken, origin: null });
    expectErrorBody(answer, 403, "origin_not_allowed", {});
    await stillSignedIn();
  });

  test("a foreign Origin cannot register or sign in either (login CSRF)", async () => {
    const cross = new HttpClient(node.baseUrl, { origin: EVIL_ORIGIN });
    expectErrorBody(await cross.post("/api/auth/register", credentials()), 403, "origin_not_allowed", {});
    expectErrorBody(await cross.post("/api/auth/login", { login: "anyone", password: "anything at all" }), 403, "origin_not_allowed", {});
  });

  test("reads are not state changes: a GET from a foreign Origin is answered", async () => {
    expect((await victim.get("/api/users/me", { origin: EVIL_ORIGIN })).status).toBe(200);
  });

  test("a fresh token from /api/auth/csrf, with the right Referer, signs out (204)", async () => {
    const client = browser();
    await register(client, credentials("referer"));
    const token = await client.csrfToken();
    const answer = await client.post("/api/auth/logout", undefined, { csrf: token, origin: null, headers: { Referer: `${PUBLIC_URL}/settings?tab=1` } });
    expect(answer.status).toBe(204);
    expectErrorBody(await client.get("/api/users/me"), 401, "unauthenticated");
  });

  test("the right token and Origin sign out (204)", async () => {
    const answer = await victim.post("/api/auth/logout", undefined, { csrf: victimSession.csrfToken });
    expect(answer.status).toBe(204);
    expectErrorBody(await victim.get("/api/users/me"), 401, "unauthenticated");
    expectErrorBody(await meWithToken(victimSession.token), 401, "unauthenticated");
  });

  test("a bearer-authenticated sign-out needs no CSRF token nor Origin (204), but a foreign Origin is still refused", async () => {
    const { token } = await register(browser(), credentials("bearer"));
    const api = new HttpClient(node.baseUrl, { origin: null });
    expectErrorBody(await api.post("/api/auth/logout", undefined, { bearer: token, origin: EVIL_ORIGIN }), 403, "origin_not_allowed", {});
    expect((await meWithToken(token)).status).toBe(200);
    const answer = await api.post("/api/auth/logout", undefined, { bearer: token });
    expect(answer.status).toBe(204);
    expectErrorBody(await meWithToken(token), 401, "unauthenticated");
  });
});

describe("security headers and cookies", () => {
  function expectSecurityHeaders(answer: ApiResponse): void {
    const csp = answer.headers.get("content-security-policy") ?? "";
    const directives = new Map(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name = "", ...values]) => [name, values]));
    expect(directives.get("script-src")).toEqual(["'self'"]);
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(directives.get("frame-ancestors")).toEqual(["'none'"]);
    expect(directives.get("object-src")).toEqual(["'none'"]);
    expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
    expect(answer.headers.get("referrer-policy")).toBe("strict-origin-when-cross-origin");
    expect(answer.headers.get("x-frame-options")).toBe("DENY");
    expect(answer.headers.get("cache-control")).toBe("no-store");
  }

  test("API answers, successful or not, carry CSP (no inline script), nosniff, Referrer-Policy, frame-ancestors 'none'; no HSTS over http", async () => {
    const client = browser();
    await register(client, credentials("headers"));
    const answers = [
      await client.get("/api/users/me"),
      await browser().get("/api/users/me"),
      await browser().get("/api/admin/audit"),
      await browser().post("/api/auth/login", { login: "nobody-here", password: "not a password" }),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 401, 401, 401]);
    for (const answer of answers) {
      expectSecurityHeaders(answer);
      expect(answer.headers.get("strict-transport-security")).toBeNull();
    }
  });

  test("with an https public URL the session cookie is __Host-shoal_session, Secure, Path=/ without Domain, and HSTS is sent", async () => {
    const secureNode = await startNode({ SHOAL_PUBLIC_URL: "https://shoal.example" });
    const client = new HttpClient(secureNode.baseUrl, { origin: "https://shoal.example" });
    const answer = await client.post<SignedInBody>("/api/auth/register", credentials("secure"));
    expect(answer.status).toBe(201);
    expect(answer.setCookies.map((c) => c.name)).toEqual(["__Host-shoal_session"]);
    expect(answer.setCookies[0]?.value).toBe(answer.body.token);
    expect(answer.setCookies[0]?.attributes).toEqual({ "max-age": "604800", path: "/", httponly: "", secure: "", samesite: "Lax" });
    expect(answer.headers.get("strict-transport-security")).toBe("max-age=31536000; includeSubDomains");
    expectSecurityHeaders(answer);

    expect((await client.get("/api/users/me")).status).toBe(200);
    // The unprefixed name is not a session cookie there.
    const unprefixed = new HttpClient(secureNode.baseUrl, { origin: "https://shoal.example" });
    unprefixed.cookies.set("shoal_session", answer.body.token);
    expectErrorBody(await unprefixed.get("/api/users/me"), 401, "unauthenticated");
    // Cookie-authenticated changes must come from the https origin.
    const fromHttp = await client.post("/api/auth/logout", undefined, { csrf: answer.body.csrfToken, origin: "http://shoal.example" });
    expectErrorBody(fromHttp, 403, "origin_not_allowed");
    expect((await client.post("/api/auth/logout", undefined, { csrf: answer.body.csrfToken })).status).toBe(204);
  });
  test("a session ends after SESSION_LIFETIME_SECONDS: the cookie's Max-Age says so, and the token is refused afterwards", async () => {
    const shortLived = await startNode({ SHOAL_PUBLIC_URL: PUBLIC_URL, SESSION_LIFETIME_SECONDS: "1" });
    const client = new HttpClient(shortLived.baseUrl, { origin: PUBLIC_URL });
    const signedUp = await client.post<SignedInBody>("/api/auth/register", credentials("brief"));
    expect(signedUp.setCookies[0]?.attributes["max-age"]).toBe("1");
    expect((await client.get("/api/users/me", { bearer: signedUp.body.token })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expectErrorBody(await client.get("/api/users/me", { bearer: signedUp.body.token }), 401, "unauthenticated");
  });
});

describe("rate limits", () => {
  test("registrations per address: the 4th in an hour is 429 with Retry-After, and a spoofed X-Forwarded-For does not escape without TRUSTED_PROXIES", async () => {
    const limited = await startNode({ SHOAL_PUBLIC_URL: PUBLIC_URL, RATE_REGISTRATIONS_PER_IP_PER_HOUR: "3" });
    const client = (forwardedFor?: string) => new HttpClient(limited.baseUrl, { origin: PUBLIC_URL, forwardedFor });
    for (let i = 0; i < 3; i++) expect((await client().post("/api/auth/register", credentials("limited"))).status).toBe(201);
    const fourth = await client().post("/api/auth/register", credentials("limited"));
    expectErrorBody(fourth, 429, "rate_limited", {});
    expect(retryAfterSeconds(fourth)).toBeGreaterThanOrEqual(3500);
    expect(retryAfterSeconds(fourth)).toBeLessThanOrEqual(3600);
    const spoofed = await client("203.0.113.77").post("/api/auth/register", credentials("limited"));
    expectErrorBody(spoofed, 429, "rate_limited", {});
    expect(retryAfterSeconds(spoofed)).toBeGreaterThan(0);
  });

  test("with TRUSTED_PROXIES=loopback, each forwarded client address has its own registration budget", async () => {
    const proxied = await startNode({ SHOAL_PUBLIC_URL: PUBLIC_URL, RATE_REGISTRATIONS_PER_IP_PER_HOUR: "3", TRUSTED_PROXIES: "loopback" });
    const from = (ip: string) => new HttpClient(proxied.baseUrl, { origin: PUBLIC_URL, forwardedFor: ip });
    for (let i = 0; i < 3; i++) expect((await from("198.51.100.1").post("/api/auth/register", credentials("proxied"))).status).toBe(201);
    const limited = await from("198.51.100.1").post("/api/auth/register", credentials("proxied"));
    expectErrorBody(limited, 429, "rate_limited", {});
    retryAfterSeconds(limited);
    expect((await from("198.51.100.2").post("/api/auth/register", credentials("proxied"))).status).toBe(201);
    // A client cannot prepend its own address in front of what the proxy appended.
    const prepended = await from("198.51.100.2, 198.51.100.1").post("/api/auth/register", credentials("proxied"));
    expectErrorBody(prepended, 429, "rate_limited", {});
  });

  test("the general per-address API limit answers 429 with Retry-After; a spoofed X-Forwarded-For does not escape; health stays reachable", async () => {
    const limited = await startNode({ SHOAL_PUBLIC_URL: PUBLIC_URL, RATE_API_REQUESTS_PER_IP_PER_MINUTE: "5" });
    const client = new HttpClient(limited.baseUrl, { origin: PUBLIC_URL });
    for (let i = 0; i < 5; i++) expect((await client.get("/api/auth/csrf")).status).toBe(200);
    const over = await client.get("/api/auth/csrf");
    expectErrorBody(over, 429, "rate_limited", {});
    const wait = retryAfterSeconds(over);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60);
    expectErrorBody(await client.get("/api/users/me", { forwardedFor: "203.0.113.99" }), 429, "rate_limited", {});
    expectErrorBody(await client.post("/api/auth/login", { login: "x", password: "y" }), 429, "rate_limited", {});
    expect((await client.get("/api/health")).status).toBe(200);
  });
});

describe("audit log", () => {
  interface AuditItem {
    id: string;
    at: string;
    action: string;
    actorId: string | null;
    subjectId: string | null;
    ip: string | null;
    detail: Record<string, unknown> | null;
  }
  interface AuditPage {
    items: AuditItem[];
    nextCursor: string | null;
  }

  let admin: HttpClient;
  let adminToken: string;
  let plainToken: string;
  let lifecycleUserId: string;
  let lockedUserId: string;

  async function allEntries(limit: number): Promise<{ items: AuditItem[]; pages: number }> {
    const items: AuditItem[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? `?limit=${limit}` : `?limit=${limit}&cursor=${cursor}`;
      const page: ApiResponse<AuditPage> = await admin.get<AuditPage>(`/api/admin/audit${query}`, { bearer: adminToken });
      expect(page.status).toBe(200);
      expect(Object.keys(page.body).sort()).toEqual(["items", "nextCursor"]);
      expect(page.body.items.length).toBeLessThanOrEqual(limit);
      items.push(...page.body.items);
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor !== null && pages < 1000);
    return { items, pages };
  }

  beforeAll(async () => {
    const operatorMade = credentials("operator");
    const created = await node.broker.call<{ user: AccountView }, object>("users.create", { ...operatorMade, role: "admin" });
    expect(created.user.role).toBe("admin");
    admin = new HttpClient(node.baseUrl, { origin: null });
    const signedIn = await login(admin, operatorMade.username, operatorMade.password);
    expect(signedIn.status).toBe(200);
    adminToken = signedIn.body.token;

    // One account through its whole life: registered, a failed and a good sign-in, sign-out, password change, deletion.
    const account = credentials("audited");
    const client = browser();
    const registered = await register(client, account);
    lifecycleUserId = registered.user.id;
    plainToken = registered.token;
    expect((await login(browser(), account.username, "wrong password here")).status).toBe(401);
    const second = browser();
    const good = await login(second, account.email, account.password);
    expect(good.status).toBe(200);
    expect((await second.post("/api/auth/logout", undefined, { csrf: good.body.csrfToken })).status).toBe(204);
    const newPassword = "a different passphrase";
    expect((await client.put("/api/users/me/password", { currentPassword: account.password, newPassword }, { csrf: registered.csrfToken })).status).toBe(204);

    // Before deleting: a normal user is refused the audit log.
    expectErrorBody(await new HttpClient(node.baseUrl, { origin: null }).get("/api/admin/audit", { bearer: plainToken }), 403, "forbidden", {});

    expect((await client.delete("/api/users/me", { password: newPassword }, { csrf: registered.csrfToken })).status).toBe(204);

    // Hostile input is recorded as plain data.
    expect((await login(browser(), "' OR 1=1 --", "' OR '1'='1")).status).toBe(401);

    // Another account locked out by ten failures.
    const target = credentials("lockedout");
    lockedUserId = (await register(browser(), target)).user.id;
    for (let i = 0; i < 10; i++) expect((await login(browser(), target.username, `guess number ${i}`)).status).toBe(401);
    const eleventh = await login(browser(), target.username, target.password);
    expectErrorBody(eleventh, 429, "too_many_attempts", {});
    expect(retryAfterSeconds(eleventh)).toBeGreaterThan(0);
  });

  test("an admin sees sign-in success and failure (with address), sign-out, password change, deletion and lockout, newest first", async () => {
    const { items } = await allEntries(200);
    const ids = items.map((item) => item.id);
    expect([...ids].sort().reverse()).toEqual(ids);
    const times = items.map((item) => Date.parse(item.at));
    expect(times.every((t, i) => i === 0 || t <= times[i - 1]!)).toBe(true);

    const lifecycle = items.filter((item) => item.subjectId === lifecycleUserId);
    expect(lifecycle.map((item) => item.action)).toEqual([
      "account.deleted",
      "account.password_changed",
      "auth.logout",
      "auth.login",
      "auth.login_failed",
      "account.registered",
    ]);
    for (const item of lifecycle) expect(item.ip).toBe("127.0.0.1");
    const [deleted, changed, , signedIn, failed] = lifecycle;
    expect(failed).toMatchObject({ actorId: null, detail: { login: expect.stringMatching(/^audited_/) } });
    expect(signedIn).toMatchObject({ actorId: lifecycleUserId });
    expect(changed?.detail).toEqual({ sessionsEnded: 0 });
    expect(deleted).toMatchObject({ actorId: lifecycleUserId });

    // Newest first: the lockout, recorded right after the tenth failure, then the failures, then the registration.
    const locked = items.filter((item) => item.subjectId === lockedUserId);
    expect(locked.map((item) => item.action)).toEqual(["auth.lockout", ...Array<string>(10).fill("auth.login_failed"), "account.registered"]);
    expect(locked[0]).toMatchObject({ actorId: null, ip: "127.0.0.1" });

    // Hostile input lands in the log as plain data.
    const sqlShaped = items.find((item) => item.action === "auth.login_failed" && item.detail?.login === "' OR 1=1 --");
    expect(sqlShaped).toMatchObject({ subjectId: null, ip: "127.0.0.1" });
  });

  test("pages of two, followed by nextCursor, return every entry exactly once", async () => {
    const whole = await allEntries(200);
    const paged = await allEntries(2);
    const ids = paged.items.map((item) => item.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(whole.items.map((item) => item.id));
    expect(paged.pages).toBe(Math.ceil(ids.length / 2));
  });

  test("entries recorded within the same millisecond are still listed newest first", async () => {
    const marker = `ordering-${Date.now()}`;
    for (let n = 0; n < 40; n++) {
      await node.broker.call("site.recordAudit", { action: "test.ordering", actorId: null, subjectId: null, ip: null, detail: { marker, n } });
    }
    const { items } = await allEntries(200);
    const listed = items.filter((item) => item.detail?.marker === marker).map((item) => item.detail?.n);
    expect(listed).toEqual(Array.from({ length: 40 }, (_, n) => 39 - n));
  });

  test("a normal user gets 403, an anonymous visitor 401, and a made-up cursor 422", async () => {
    const plain = browser();
    await register(plain, credentials("curious"));
    expectErrorBody(await plain.get("/api/admin/audit"), 403, "forbidden", {});
    expectErrorBody(await browser().get("/api/admin/audit"), 401, "unauthenticated", {});
    expectErrorBody(await browser().get("/api/admin/audit?limit=2"), 401, "unauthenticated", {});
    const badCursor = await admin.get("/api/admin/audit?cursor=%27%20OR%201%3D1%20--", { bearer: adminToken });
    expectErrorBody(badCursor, 422, "validation_failed", { cursor: expect.any(String) });
  });
});

/**
 * A small HTTP client for API tests: real fetch against a running node, with a cookie jar
 * (what the server sets with Set-Cookie is sent back on later requests, as a browser
 * would), an Origin header on every request, and JSON helpers.
 *
 *   const browser = new HttpClient(node.baseUrl, { origin: "http://shoal.test" });
 *   const signedUp = await browser.post("/api/auth/register", { username, email, password });
 *   await browser.post("/api/auth/logout", undefined, { csrf: signedUp.body.csrfToken });
 *
 * or, for a test that just needs someone signed in:
 *
 *   const member = await signUpMember(node.baseUrl, node.publicUrl, { prefix: "owner" });
 */

import type { MediaJson } from "../../lib/media/media-view";

/** One cookie as the server set it: its value and the attributes of the Set-Cookie line. */
export interface SetCookie {
  readonly name: string;
  readonly value: string;
  /** Lower-case attribute names; flags (HttpOnly, Secure) map to "". */
  readonly attributes: Readonly<Record<string, string>>;
  readonly raw: string;
}

export interface ApiResponse<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  /** The body as text, exactly as received. */
  readonly text: string;
  /** The body parsed as JSON; undefined when it is empty or not JSON. */
  readonly body: T;
  /** The cookies this response set. */
  readonly setCookies: readonly SetCookie[];
}

export interface RequestOptions {
  /** A JSON value to send (serialised, with Content-Type: application/json). */
  readonly json?: unknown;
  /** A raw body; sent as application/json unless `headers` says otherwise. */
  readonly body?: string | Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as Authorization: Bearer <token>. */
  readonly bearer?: string;
  /** Sent as X-CSRF-Token. */
  readonly csrf?: string;
  /** Overrides the client's Origin for this request; null sends none. */
  readonly origin?: string | null;
  /** false: do not send the jar's cookies with this request. */
  readonly cookies?: boolean;
  /** Sent as X-Forwarded-For. */
  readonly forwardedFor?: string;
}

export interface ClientOptions {
  /** The Origin header sent by default (null: none). */
  readonly origin?: string | null;
  /** Sent as X-Forwarded-For on every request (a client "behind" a trusted proxy at that address). */
  readonly forwardedFor?: string;
}

export function parseSetCookie(raw: string): SetCookie {
  const [pair = "", ...attributeParts] = raw.split(";");
  const equals = pair.indexOf("=");
  const name = (equals === -1 ? pair : pair.slice(0, equals)).trim();
  const value = equals === -1 ? "" : decodeURIComponent(pair.slice(equals + 1).trim());
  const attributes: Record<string, string> = {};
  for (const part of attributeParts) {
    const at = part.indexOf("=");
    const key = (at === -1 ? part : part.slice(0, at)).trim().toLowerCase();
    if (key !== "") attributes[key] = at === -1 ? "" : part.slice(at + 1).trim();
  }
  return { name, value, attributes, raw };
}

export class HttpClient {
  /** Cookie name → value, as a browser for this site would hold them. */
  readonly cookies = new Map<string, string>();
  private readonly origin: string | null;
  private readonly forwardedFor: string | undefined;

  constructor(
    readonly baseUrl: string,
    options: ClientOptions = {},
  ) {
    this.origin = options.origin === undefined ? new URL(baseUrl).origin : options.origin;
    this.forwardedFor = options.forwardedFor;
  }

  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = {};
    const origin = options.origin === undefined ? this.origin : options.origin;
    if (origin !== null) headers.Origin = origin;
    const forwardedFor = options.forwardedFor ?? this.forwardedFor;
    if (forwardedFor !== undefined) headers["X-Forwarded-For"] = forwardedFor;
    if (options.bearer !== undefined) headers.Authorization = `Bearer ${options.bearer}`;
    if (options.csrf !== undefined) headers["X-CSRF-Token"] = options.csrf;
    if ((options.cookies ?? true) && this.cookies.size > 0) {
      headers.Cookie = [...this.cookies].map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join("; ");
    }
    let body: string | Uint8Array | undefined = options.body;
    if (options.json !== undefined) body = JSON.stringify(options.json);
    if (body !== undefined) headers["Content-Type"] = "application/json";
    Object.assign(headers, options.headers);

    const response = await fetch(`${this.baseUrl}${path}`, { method, headers, body, redirect: "manual" });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const setCookies = response.headers.getSetCookie().map(parseSetCookie);
    for (const cookie of setCookies) {
      const maxAge = cookie.attributes["max-age"];
      if (cookie.value === "" || (maxAge !== undefined && Number(maxAge) <= 0)) this.cookies.delete(cookie.name);
      else this.cookies.set(cookie.name, cookie.value);
    }
    return { status: response.status, headers: response.headers, text, body: parsed as T, setCookies };
  }

  get<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.request<T>("GET", path, options);
  }

  post<T = unknown>(path: string, json?: unknown, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    return this.request<T>("POST", path, json === undefined ? options : { ...options, json });
  }

  put<T = unknown>(path: string, json?: unknown, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    return this.request<T>("PUT", path, json === undefined ? options : { ...options, json });
  }

  delete<T = unknown>(path: string, json?: unknown, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    return this.request<T>("DELETE", path, json === undefined ? options : { ...options, json });
  }

  /** A fresh CSRF token for the session this client's cookie carries. */
  async csrfToken(): Promise<string> {
    const answer = await this.get<{ csrfToken: string }>("/api/auth/csrf");
    if (answer.status !== 200) throw new Error(`GET /api/auth/csrf answered ${answer.status}: ${answer.text}`);
    return answer.body.csrfToken;
  }
}

/** The account fields the API returns to the account holder. */
export interface AccountView {
  readonly id: string;
  readonly username: string;
  readonly email: string;
  readonly role: "user" | "admin";
  readonly quotaBytes: number;
  readonly usedBytes: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What register and login answer. */
export interface SignedInBody {
  readonly user: AccountView;
  readonly token: string;
  readonly csrfToken: string;
}

/** What a new account is registered with. */
export interface MemberCredentials {
  readonly username: string;
  readonly email: string;
  readonly password: string;
}

let memberCounter = 0;

/**
 * Credentials no other call in this process uses: `<prefix>_<pid>_<n>` as the username (the
 * prefix says which test made the account; keep it short, usernames are at most 32 characters).
 */
export function memberCredentials(prefix = "member"): MemberCredentials {
  memberCounter++;
  const tag = `${prefix}_${process.pid}_${memberCounter}`;
  return { username: tag, email: `${tag}@example.test`, password: `long enough secret ${memberCounter}` };
}

export interface SignUpOptions {
  /** The start of the username (default "member"); see memberCredentials. */
  readonly prefix?: string;
}

/** A member who has just registered, and the browser they registered with. */
export interface SignedUpMember {
  /** The browser that registered: it holds the session cookie and sends `origin`. */
  readonly client: HttpClient;
  /** The session's bearer token. */
  readonly token: string;
  /** The CSRF token for the session (for cookie-authenticated writes). */
  readonly csrf: string;
  readonly id: string;
  readonly username: string;
  readonly email: string;
  readonly password: string;
}

/**
 * Registers a new member through POST /api/auth/register on `baseUrl`, from a browser whose
 * Origin is `origin`, and asserts the answer is 201 (showing the body when it is not).
 */
export async function signUpMember(baseUrl: string, origin: string | null, options: SignUpOptions = {}): Promise<SignedUpMember> {
  const account = memberCredentials(options.prefix);
  const client = new HttpClient(baseUrl, { origin });
  const answer = await client.post<SignedInBody>("/api/auth/register", account);
  expect({ status: answer.status, text: answer.status === 201 ? "" : answer.text }).toEqual({ status: 201, text: "" });
  return { client, token: answer.body.token, csrf: answer.body.csrfToken, id: answer.body.user.id, ...account };
}

export interface ErrorBodyShape {
  readonly error: { readonly code: string; readonly message: string; readonly fields: Readonly<Record<string, string>> };
}

/** Words that must never reach a client in an error: stack frames, SQL, driver and file names. */
const INTERNALS = /\bstack\b|\bat [\w.<>]+ \(|\.ts:\d|\.js:\d|node_modules|\bselect\b|\binsert into\b|\bupdate \w+ set\b|\bdelete from\b|sqlite|mysql|mariadb|kysely|ER_[A-Z_]+/i;

/**
 * Asserts status, code, and that the body is exactly {"error":{"code","message","fields"}}
 * (no other keys anywhere at the top two levels), served as JSON, without internals.
 */
export function expectErrorBody(answer: ApiResponse, status: number, code: string, fields?: Record<string, unknown>): ErrorBodyShape {
  expect({ status: answer.status, code: (answer.body as ErrorBodyShape | undefined)?.error?.code }).toEqual({ status, code });
  expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
  const body = answer.body as ErrorBodyShape;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "fields", "message"]);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.error.fields).toEqual(expect.any(Object));
  expect(Array.isArray(body.error.fields)).toBe(false);
  for (const value of Object.values(body.error.fields)) expect(typeof value).toBe("string");
  if (fields !== undefined) expect(body.error.fields).toEqual(fields);
  expect(answer.text).not.toMatch(INTERNALS);
  return body;
}

/** The bytes of the member's quota in use, as `GET /api/users/me` says. */
export async function usedBytesOf(client: HttpClient, token: string): Promise<number> {
  const me = await client.get<{ user: { usedBytes: number } }>("/api/users/me", { bearer: token });
  expect(me.status).toBe(200);
  return me.body.user.usedBytes;
}

/** The member's own library, newest first (first page). */
export async function myMediaOf(client: HttpClient, token: string): Promise<MediaJson[]> {
  const list = await client.get<{ items: MediaJson[] }>("/api/media?scope=mine", { bearer: token });
  expect(list.status).toBe(200);
  return list.body.items;
}

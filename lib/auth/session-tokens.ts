import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** A new session token (256 random bits) and the id under which it is stored (its SHA-256): the token itself is never stored. */
export function newSessionToken(): { token: string; sessionId: string } {
  const token = randomBytes(32).toString("base64url");
  return { token, sessionId: sessionIdOf(token) };
}

export function sessionIdOf(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** Tokens are 43 base64url characters; anything else is not worth a lookup. */
export function looksLikeSessionToken(value: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(value);
}

/** A CSRF token bound to one session: a nonce and its HMAC with the session id (signed double submit). */
export function csrfTokenFor(secret: string, sessionId: string): string {
  const nonce = randomBytes(16).toString("base64url");
  return `${nonce}.${csrfSignature(secret, sessionId, nonce)}`;
}

export function isValidCsrfToken(secret: string, sessionId: string, token: string | undefined): boolean {
  if (!token) return false;
  const [nonce, signature, extra] = token.split(".");
  if (!nonce || !signature || extra !== undefined) return false;
  const expected = Buffer.from(csrfSignature(secret, sessionId, nonce));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

function csrfSignature(secret: string, sessionId: string, nonce: string): string {
  return createHmac("sha256", secret).update(`csrf:${sessionId}:${nonce}`).digest("base64url");
}

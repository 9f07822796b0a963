/**
 * Errors that carry what the API answers: an HTTP status, a stable code for clients,
 * a message safe to show, and optional per-field details. Anything else that escapes
 * is reported as a 500 without its message.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: Readonly<Record<string, string>>,
    /** Sent as Retry-After. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** No valid session: sign in first. */
export class UnauthenticatedError extends AppError {
  constructor(message = "Sign in to do this.") {
    super(401, "unauthenticated", message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message = "You are not allowed to do this.", code = "forbidden") {
    super(403, code, message);
  }
}

export class RateLimitedError extends AppError {
  constructor(message: string, retryAfterSeconds: number, code = "rate_limited") {
    super(429, code, message, undefined, Math.max(1, Math.ceil(retryAfterSeconds)));
  }
}

export class NotFoundError extends AppError {
  constructor(what = "resource") {
    super(404, "not_found", `The ${what} was not found.`);
  }
}

export class ValidationError extends AppError {
  constructor(message: string, fields?: Record<string, string>) {
    super(422, "validation_failed", message, fields);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, fields?: Record<string, string>) {
    super(409, "conflict", message, fields);
  }
}

/** A dependency (database primary, cache, ...) cannot serve right now; retry later. */
export class UnavailableError extends AppError {
  constructor(message: string) {
    super(503, "unavailable", message);
  }
}

/** An UnavailableError, here or as it arrives from another node (a Moleculer error with the same status and code). */
export function isUnavailable(error: unknown): boolean {
  if (error instanceof UnavailableError) return true;
  const { code, type } = (error ?? {}) as { code?: unknown; type?: unknown };
  return code === 503 && type === "unavailable";
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string, code = "too_large") {
    super(413, code, message);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string) {
    super(415, "unsupported_type", message);
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, code = "bad_request") {
    super(400, code, message);
  }
}

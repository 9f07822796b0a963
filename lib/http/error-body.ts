import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "./front-door";

/** The one shape every API error takes. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly fields: Readonly<Record<string, string>> };
}

/** What an error looks like by the time it reaches the gateway (Moleculer, moleculer-web or body-parser). */
export interface GatewayError {
  readonly message?: string;
  readonly code?: number | string;
  readonly type?: string;
  readonly status?: number;
  readonly statusCode?: number;
  readonly data?: unknown;
}

const INTERNAL_MESSAGE = "Something went wrong on our side; it has been logged.";

function validationFields(data: unknown): Record<string, string> {
  // A Map, then own properties: a refused field may be named `__proto__`, which an assignment would not record.
  const fields = new Map<string, string>();
  if (Array.isArray(data)) {
    for (const item of data as { field?: unknown; message?: unknown; type?: unknown }[]) {
      const field = typeof item.field === "string" ? item.field : "_";
      if (fields.has(field)) continue;
      // fastest-validator names an unknown field in the message; keep it readable.
      const message = typeof item.message === "string" ? item.message : "is invalid";
      fields.set(field, item.type === "objectStrict" ? message.replace(/^The object '.*?' contains forbidden keys: /, "unknown fields: ") : message);
    }
  }
  return Object.fromEntries(fields);
}

/**
 * Decides status and body for an error. Only messages known to be written for clients
 * pass through; anything unexpected becomes a generic 500 so that no stack, SQL or
 * internal name leaks.
 */
export function toErrorResponse(error: GatewayError): { status: number; body: ErrorBody } {
  const respond = (status: number, code: string, message: string, fields: Record<string, string> = {}) => ({
    status,
    body: { error: { code, message, fields } },
  });
  const httpStatus = typeof error.code === "number" ? error.code : (error.status ?? error.statusCode);
  const type = error.type ?? "";

  if (type === "VALIDATION_ERROR") {
    return respond(422, "validation_failed", "Some fields are missing or invalid.", validationFields(error.data));
  }
  if (type === "SERVICE_NOT_FOUND" || type === "SERVICE_NOT_AVAILABLE") {
    return respond(503, "unavailable", "This part of Shoal is not available right now; try again shortly.");
  }
  if (type === "REQUEST_TIMEOUT") return respond(504, "timeout", "The request took too long; try again.");
  if (type === "entity.too.large") return respond(413, "payload_too_large", "The request body is too large.");
  if (type === "entity.parse.failed") return respond(400, "invalid_json", "The request body is not valid JSON.");
  if (type === "encoding.invalid") return respond(400, "invalid_encoding", "The request body is not valid UTF-8.");
  if (type === "encoding.unsupported" || type === "charset.unsupported") {
    return respond(415, "unsupported_encoding", "The request body encoding is not supported.");
  }
  if (httpStatus === undefined || httpStatus < 400 || httpStatus > 599) return respond(500, "internal", INTERNAL_MESSAGE);

  // Errors raised on purpose carry a lower-case code of ours; moleculer-web's own are upper-case and generic.
  if (/^[a-z][a-z0-9_]*$/.test(type)) {
    const fields = (error.data as { fields?: Record<string, string> } | undefined)?.fields ?? {};
    return respond(httpStatus, type, error.message ?? "", fields);
  }
  if (httpStatus >= 500) {
    return httpStatus === 503
      ? respond(503, "unavailable", "Shoal cannot serve this right now; try again shortly.")
      : respond(500, "internal", INTERNAL_MESSAGE);
  }
  return respond(httpStatus, type ? type.toLowerCase() : "bad_request", error.message ?? "The request was not accepted.");
}

/** Answers an error in the one shape, with the security headers, no caching and `Retry-After` on 429 and 503; logs what is ours (5xx). */
export function answerError(
  req: IncomingMessage,
  res: ServerResponse,
  error: GatewayError,
  options: { headers: (req: IncomingMessage, res: ServerResponse, next: () => void) => void; logError: (message: string, error: unknown) => void; requestId?: string },
): void {
  const { status, body } = toErrorResponse(error);
  options.headers(req, res, () => undefined);
  if (status >= 500) options.logError(`${req.method} ${req.url} failed (request ${options.requestId ?? "unknown"}):`, error);
  const retryAfter = (error.data as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
  if (status === 429 || status === 503) res.setHeader("Retry-After", String(retryAfter ?? 5));
  res.setHeader("Cache-Control", "no-store");
  sendJson(res, status, body);
}

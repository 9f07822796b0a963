import type { S3Client } from "@aws-sdk/client-s3";
import { UnavailableError } from "../errors";
import type { StorageOutage } from "./storage-outage";

/** Codes of a request that never got an answer from the store. */
const NETWORK_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "EAI_AGAIN", "ENOTFOUND"]);

/** The bucket cannot be reached, or answers that it cannot serve: try again later (503), not a fault of the request. */
export class StorageUnavailableError extends UnavailableError {
  constructor(cause: unknown) {
    super("File storage cannot be reached right now; try again shortly.");
    this.cause = cause;
  }
}

/**
 * True when the store gave no answer at all: refused, reset, timed out. A call the SDK sent and got no HTTP status
 * back for is one that never reached the store, whatever the error looks like: the SDK's retry step replaces an
 * error it does not recognise as one (from another realm, say) with a plain Error without its code. An aborted call
 * is the caller's choice, not an outage.
 */
export function isStorageSilent(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, name, $metadata } = error as { code?: unknown; name?: unknown; $metadata?: { httpStatusCode?: number } };
  if (name === "AbortError") return false;
  if (typeof code === "string" && NETWORK_ERROR_CODES.has(code)) return true;
  if (name === "TimeoutError") return true;
  return $metadata !== undefined && $metadata.httpStatusCode === undefined;
}

/** True when the store gave no answer (isStorageSilent) or a 5xx one, after the SDK's own retries. */
export function isStorageUnreachable(error: unknown): boolean {
  if (isStorageSilent(error)) return true;
  const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 500;
}

/**
 * Turns every call's failure to reach the store into a StorageUnavailableError, at the outermost step (after
 * the SDK's retries), so that an S3 outage answers 503 with Retry-After, and a job waits for the store instead
 * of spending its attempts, wherever the call was made. With an `outage`, no answer at all begins one (a 5xx is an
 * answer), and while it lasts calls fail so at once, without being sent.
 */
export function reportUnreachableAsUnavailable(client: S3Client, outage?: StorageOutage): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      if (outage?.known) throw new StorageUnavailableError(outage.reason);
      try {
        return await next(args);
      } catch (error) {
        if (!isStorageUnreachable(error)) throw error;
        if (isStorageSilent(error)) outage?.begin(error);
        throw new StorageUnavailableError(error);
      }
    },
    { step: "initialize", name: "shoalUnreachableAsUnavailable" },
  );
}

/** A store failure as health details name it: the SDK's error behind a StorageUnavailableError, with its name. */
export function describeStorageFailure(thrown: unknown): string {
  const error = thrown instanceof StorageUnavailableError ? thrown.cause : thrown;
  return error instanceof Error ? error.name + (error.message ? `: ${error.message}` : "") : String(error);
}

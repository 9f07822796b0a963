import { nanoid } from "nanoid";

/** A tus upload id as this gateway makes them: "u" and 21 base64url characters (nanoid). */
export const UPLOAD_ID_PATTERN = /^u[A-Za-z0-9_-]{21}$/;

export function newUploadId(): string {
  return `u${nanoid()}`;
}

/**
 * The upload id a request's URL names under `collectionPath`, or undefined when the path is anything but
 * `<collectionPath>/<id>` with a well-formed id. Ids become file names and object keys: nothing else may pass.
 */
export function uploadIdInUrl(url: string | undefined, collectionPath: string): string | undefined {
  const pathname = (url ?? "").split("?", 1)[0] ?? "";
  const prefix = `${collectionPath}/`;
  if (!pathname.startsWith(prefix)) return undefined;
  const id = pathname.slice(prefix.length);
  return UPLOAD_ID_PATTERN.test(id) ? id : undefined;
}

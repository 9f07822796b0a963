import { ERRORS, TUS_RESUMABLE } from "@tus/utils";

/** A refusal in the API's terms: status, stable code, a message for people, details per header or field. */
export interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly fields?: Readonly<Record<string, string>>;
}

const OFFSET_HINT = "ask for the upload's offset with HEAD, then send from there";
const LENGTH_REQUIRED: Refusal = {
  status: 400,
  code: "length_required",
  message: "Upload-Length is required.",
  fields: { "Upload-Length": "is required" },
};
const INVALID_CONTENT_TYPE: Refusal = {
  status: 415,
  code: "invalid_content_type",
  message: "Send the upload's bytes as Content-Type: application/offset+octet-stream.",
  fields: { "Content-Type": "must be application/offset+octet-stream" },
};
const INVALID_METADATA: Refusal = {
  status: 400,
  code: "invalid_metadata",
  message: "Upload-Metadata is malformed: it must be comma-separated pairs of a key and a base64 value.",
  fields: { "Upload-Metadata": "is malformed" },
};
const UNSUPPORTED_VERSION: Refusal = {
  status: 412,
  code: "unsupported_tus_version",
  message: `This server speaks tus ${TUS_RESUMABLE}: send Tus-Resumable: ${TUS_RESUMABLE}.`,
  fields: { "Tus-Resumable": `must be ${TUS_RESUMABLE}` },
};
const UPLOAD_BUSY: Refusal = { status: 409, code: "upload_busy", message: "Another request is writing to this upload; try again shortly." };

/** @tus/server's refusals (its ERRORS, and what its request checks answer), by the text it would send. */
const BY_TUS_BODY = new Map<string, Refusal>([
  [ERRORS.MISSING_OFFSET.body, { status: 400, code: "offset_required", message: `Upload-Offset is required: ${OFFSET_HINT}.`, fields: { "Upload-Offset": "is required" } }],
  [ERRORS.INVALID_OFFSET.body, { status: 409, code: "offset_conflict", message: `Upload-Offset is not where the upload is: ${OFFSET_HINT}.`, fields: { "Upload-Offset": "does not match the upload" } }],
  [ERRORS.INVALID_CONTENT_TYPE.body, INVALID_CONTENT_TYPE],
  [ERRORS.FILE_NOT_FOUND.body, { status: 404, code: "not_found", message: "The upload was not found." }],
  [ERRORS.FILE_NO_LONGER_EXISTS.body, { status: 410, code: "upload_expired", message: "This upload has expired; start it again." }],
  [ERRORS.ERR_SIZE_EXCEEDED.body, { status: 413, code: "upload_length_exceeded", message: "More bytes were sent than the upload's Upload-Length." }],
  [ERRORS.INVALID_LENGTH.body, LENGTH_REQUIRED],
  [ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION.body, LENGTH_REQUIRED],
  [ERRORS.INVALID_METADATA.body, INVALID_METADATA],
  [ERRORS.UNSUPPORTED_CONCATENATION_EXTENSION.body, { status: 400, code: "unsupported_extension", message: "Parallel uploads (Upload-Concat) are not supported." }],
  [ERRORS.ERR_LOCK_TIMEOUT.body, UPLOAD_BUSY],
  // A newer request for the same upload (a client that reconnected) took it over.
  [ERRORS.ABORTED.body, UPLOAD_BUSY],
  ["Tus-Resumable Required\n", UNSUPPORTED_VERSION],
  ["Not found\n", { status: 404, code: "not_found", message: "There is nothing here." }],
]);

const HEADER_CHECK = /^Invalid ([\w -]+)\n$/;

function headerName(lowerCase: string): string {
  return lowerCase.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase());
}

/**
 * What @tus/server's own refusal (its status and plain-text body) becomes in the API's terms; undefined for
 * anything else, which is then ours to report as an internal error.
 */
export function tusRefusal(status: number, body: string): Refusal | undefined {
  const known = BY_TUS_BODY.get(body);
  if (known) return known;
  const invalid = status === 400 ? HEADER_CHECK.exec(body) : null;
  if (!invalid) return undefined;
  const headers = (invalid[1] ?? "").split(" ").filter(Boolean);
  if (headers.includes("tus-resumable")) return UNSUPPORTED_VERSION;
  if (headers.includes("upload-metadata")) return INVALID_METADATA;
  if (headers.includes("content-type")) return INVALID_CONTENT_TYPE;
  return {
    status: 400,
    code: "invalid_headers",
    message: `Some tus headers are malformed: ${headers.map(headerName).join(", ")}.`,
    fields: Object.fromEntries(headers.map((name) => [headerName(name), "is malformed"])),
  };
}

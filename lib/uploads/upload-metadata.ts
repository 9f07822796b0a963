import { AppError, ValidationError } from "../errors";
import { FORBIDDEN_KEYS } from "../security/forbidden-keys";

/** Longest accepted values, in characters: what the catalogue keeps of each. */
export const METADATA_MAX_CHARACTERS = { title: 200, filename: 255, filetype: 100 } as const;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** tus: a key is non-empty ASCII without spaces or commas. */
const KEY = /^[\x21-\x2b\x2d-\x7e]+$/;
const CONTROL_CHARACTER = /\p{Cc}/u;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes one value: base64 exactly as it encodes (no stray bits or padding), then UTF-8 that decodes without replacement. */
function decodeValue(value: string): { text: string } | { problem: string } {
  if (value.length % 4 !== 0 || !BASE64.test(value)) return { problem: "is not base64" };
  const bytes = Buffer.from(value, "base64");
  if (bytes.toString("base64") !== value) return { problem: "is not canonical base64" };
  try {
    return { text: strictUtf8.decode(bytes) };
  } catch {
    return { problem: "is not valid UTF-8" };
  }
}

/**
 * A tus `Upload-Metadata` header, decoded and checked before an upload is created: every value must be
 * canonical base64 of valid UTF-8 (else 400 invalid_metadata), and the title, file name and file type must
 * fit the catalogue and hold no control characters, and no key may be `__proto__` or `constructor` (else 422
 * validation_failed). A key without a value decodes to "". Other keys are kept as sent.
 */
export function checkedUploadMetadata(header: string | undefined): Record<string, string> {
  if (header === undefined || header.trim() === "") return {};
  // Maps: keys are the client's, and some ("__proto__", "toString") mean something to a plain object.
  const metadata = new Map<string, string>();
  const malformed = new Map<string, string>();
  const invalid = new Map<string, string>();
  for (const pair of header.split(",")) {
    const [key = "", value, ...rest] = pair.split(" ");
    if (!KEY.test(key) || rest.length > 0) {
      malformed.set("Upload-Metadata", "must be comma-separated pairs of a key and a base64 value, separated by one space");
      continue;
    }
    if (metadata.has(key) || malformed.has(key)) {
      malformed.set(key, "is given more than once");
      continue;
    }
    const decoded = value === undefined ? { text: "" } : decodeValue(value);
    if ("problem" in decoded) {
      malformed.set(key, decoded.problem);
      continue;
    }
    metadata.set(key, decoded.text);
  }
  if (malformed.size > 0) {
    throw new AppError(400, "invalid_metadata", "Upload-Metadata is malformed: each value must be base64 of UTF-8 text.", Object.fromEntries(malformed));
  }
  // As with every other request's fields: these would reach a prototype once merged by assignment.
  for (const key of metadata.keys()) if (FORBIDDEN_KEYS.has(key)) invalid.set(key, "is not allowed");
  for (const [key, limit] of Object.entries(METADATA_MAX_CHARACTERS)) {
    const text = metadata.get(key);
    if (text === undefined) continue;
    if (CONTROL_CHARACTER.test(text)) invalid.set(key, "must not contain control characters");
    else if ([...text].length > limit) invalid.set(key, `must be at most ${limit} characters`);
  }
  if (invalid.size > 0) throw new ValidationError("Some of the upload's details are invalid.", Object.fromEntries(invalid));
  return Object.fromEntries(metadata);
}

import fc from "fast-check";
import { AppError } from "../../lib/errors";
import { METADATA_MAX_CHARACTERS, checkedUploadMetadata } from "../../lib/uploads/upload-metadata";
import type { PropertyGroup } from "./fuzz-parameters";

/** tus keys: printable ASCII but space and comma. */
const KEY_CHARACTERS = Array.from({ length: 0x7e - 0x21 + 1 }, (_, index) => String.fromCharCode(0x21 + index)).filter((c) => c !== ",");
const CHECKED_KEYS = Object.keys(METADATA_MAX_CHARACTERS) as (keyof typeof METADATA_MAX_CHARACTERS)[];

const otherKey = fc.string({ unit: fc.constantFrom(...KEY_CHARACTERS), minLength: 1, maxLength: 12 }).filter((key) => !["__proto__", "constructor", ...CHECKED_KEYS].includes(key));
/** Text a checked key accepts: no control characters, within its limit. */
const checkedValue = (limit: number) =>
  fc.string({ unit: "grapheme", maxLength: Math.min(limit, 80) }).filter((text) => !/\p{Cc}/u.test(text) && [...text].length <= limit);

const entries = fc
  .tuple(
    fc.record(
      { title: checkedValue(METADATA_MAX_CHARACTERS.title), filename: checkedValue(METADATA_MAX_CHARACTERS.filename), filetype: checkedValue(METADATA_MAX_CHARACTERS.filetype) },
      { requiredKeys: [] },
    ),
    fc.uniqueArray(fc.tuple(otherKey, fc.string({ unit: "grapheme", maxLength: 40 })), { selector: ([key]) => key, maxLength: 5 }),
  )
  .map(([checked, others]) => [...Object.entries(checked), ...others] as [string, string][]);

/** As tus clients write it: `key base64(value)`, comma-separated; an empty value may go without its base64. */
function header(pairs: readonly (readonly [string, string])[], bare: boolean): string {
  return pairs.map(([key, value]) => (value === "" && bare ? key : `${key} ${Buffer.from(value, "utf8").toString("base64")}`)).join(",");
}

function isDocumentedRefusal(error: unknown): boolean {
  return error instanceof AppError && ((error.status === 400 && error.code === "invalid_metadata") || (error.status === 422 && error.code === "validation_failed"));
}

const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

export const uploadMetadata: PropertyGroup = {
  subject: "tus Upload-Metadata parsing",
  properties: [
    {
      name: "whatever a tus client encodes decodes to exactly the same keys and values",
      property: fc.property(entries, fc.boolean(), (pairs, bare) => {
        const decoded = checkedUploadMetadata(header(pairs, bare));
        return Object.keys(decoded).length === pairs.length && pairs.every(([key, value]) => Object.hasOwn(decoded, key) && decoded[key] === value);
      }),
    },
    {
      name: "any header is decoded or refused with 400 invalid_metadata or 422 validation_failed, nothing else",
      property: fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: fc.constantFrom(...BASE64_ALPHABET, " ", ",", "_", "t", "i", "l", "e"), maxLength: 60 }),
          fc.array(fc.tuple(fc.constantFrom("title", "filename", "filetype", "__proto__", "constructor", "x"), fc.string()), { maxLength: 4 }).map((pairs) => header(pairs, false)),
        ),
        (text) => {
          try {
            const decoded = checkedUploadMetadata(text);
            return Object.getPrototypeOf(decoded) === Object.prototype && Object.values(decoded).every((value) => typeof value === "string");
          } catch (error) {
            return isDocumentedRefusal(error);
          }
        },
      ),
    },
    {
      name: "a value with one character changed is decoded to other text or refused, and never changes another key",
      property: fc.property(entries, fc.nat(), fc.constantFrom(...BASE64_ALPHABET, "-", "_", " "), (pairs, index, replacement) => {
        const withValues = pairs.filter(([, value]) => value !== "");
        fc.pre(withValues.length > 0);
        const [target] = withValues[index % withValues.length]!;
        const edited = pairs.map(([key, value]): [string, string] => [key, Buffer.from(value, "utf8").toString("base64")]);
        const entry = edited.find(([key]) => key === target)!;
        const where = index % entry[1].length;
        entry[1] = `${entry[1].slice(0, where)}${replacement}${entry[1].slice(where + 1)}`;
        try {
          const decoded = checkedUploadMetadata(edited.map(([key, value]) => `${key} ${value}`).join(","));
          return pairs.every(([key, value]) => key === target || decoded[key] === value);
        } catch (error) {
          return isDocumentedRefusal(error);
        }
      }),
    },
  ],
};

import fc from "fast-check";
import { CURSOR_PATTERN, decodeCursor, encodeCursor } from "../../lib/media/cursor";
import type { ListPosition } from "../../lib/media/cursor";
import type { PropertyGroup } from "./fuzz-parameters";

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

const mediaId = fc.string({ unit: fc.constantFrom(...ID_ALPHABET), minLength: 21, maxLength: 21 });
const position = fc.record({ createdAt: fc.maxSafeNat(), id: mediaId });

function isPosition(value: ListPosition | undefined): boolean {
  return value === undefined || (Number.isSafeInteger(value.createdAt) && value.createdAt >= 0 && /^[A-Za-z0-9_-]{21}$/.test(value.id));
}

/** base64url of JSON shaped roughly like a cursor, so that decoding gets past the first checks. */
const nearCursor = fc
  .oneof(
    fc.tuple(fc.oneof(fc.double(), fc.integer(), fc.string(), fc.constant(null)), fc.oneof(mediaId, fc.string(), fc.integer())),
    fc.array(fc.jsonValue(), { maxLength: 3 }),
    fc.jsonValue(),
  )
  .map((value) => Buffer.from(JSON.stringify(value) ?? "", "utf8").toString("base64url"));

export const cursor: PropertyGroup = {
  subject: "listing cursor decoding",
  properties: [
    {
      name: "every position survives encoding and decoding, and its cursor passes the params check",
      property: fc.property(position, (at) => {
        const encoded = encodeCursor(at);
        const decoded = decodeCursor(encoded);
        return CURSOR_PATTERN.test(encoded) && decoded !== undefined && decoded.createdAt === at.createdAt && decoded.id === at.id;
      }),
    },
    {
      name: "any string decodes to a valid position or to nothing, never an error",
      property: fc.property(fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...ID_ALPHABET), maxLength: 250 }), nearCursor), (text) =>
        isPosition(decodeCursor(text)),
      ),
    },
    {
      name: "a cursor with one character changed decodes to a valid position or to nothing",
      property: fc.property(position, fc.nat(), fc.constantFrom(...ID_ALPHABET), (at, index, replacement) => {
        const encoded = encodeCursor(at);
        const where = index % encoded.length;
        return isPosition(decodeCursor(`${encoded.slice(0, where)}${replacement}${encoded.slice(where + 1)}`));
      }),
    },
  ],
};

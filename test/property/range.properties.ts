import fc from "fast-check";
import rangeParser from "range-parser";
import { byteRangeForSize, isWellFormedByteRange } from "../../lib/http/file-server";
import { RangeNotSatisfiableError, resolveRange } from "../../lib/storage/storage-rules";
import type { PropertyGroup } from "./fuzz-parameters";

const position = fc.oneof(fc.nat({ max: 2000 }), fc.maxSafeNat(), fc.bigInt({ min: 0n, max: 10n ** 25n }));

/** One item of a byte range set: `first-last` (last ≥ first), `first-` or `-suffix`, with spaces around it. */
const rangeItem = fc
  .oneof(
    fc.tuple(position, fc.nat({ max: 5000 })).map(([first, extra]) => `${first}-${BigInt(first) + BigInt(extra)}`),
    position.map((first) => `${first}-`),
    position.map((suffix) => `-${suffix}`),
  )
  .chain((item) => fc.tuple(fc.constantFrom("", " ", "  "), fc.constantFrom("", " ")).map(([before, after]) => `${before}${item}${after}`));

const wellFormed = fc
  .tuple(fc.constantFrom("bytes=", "Bytes=", "BYTES="), fc.array(rangeItem, { minLength: 1, maxLength: 4 }), fc.array(fc.nat({ max: 4 }), { maxLength: 2 }))
  .map(([unit, items, empties]) => {
    // Lists may hold empty items (RFC 9110 §5.6.1).
    const withEmpty: string[] = [...items];
    for (const at of empties) withEmpty.splice(at, 0, " ");
    return `${unit}${withEmpty.join(",")}`;
  });

/** Headers close to a range set, so that the parsers disagree where they can: odd units, signs, stray characters. */
const nearRange = fc
  .array(fc.constantFrom("bytes", "=", "-", ",", " ", "0", "1", "9", "5", "+", "e", "x", ";", "\t", "items"), { maxLength: 24 })
  .map((parts) => parts.join(""));

const fileSize = fc.oneof(fc.nat({ max: 5000 }), fc.integer({ min: 0, max: 2 ** 40 }));

/** Whether some item of a well-formed set holds a byte of a file of `size` bytes. */
function fits(header: string, size: number): boolean {
  return header
    .slice(header.indexOf("=") + 1)
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
    .some((item) => (item.startsWith("-") ? BigInt(item.slice(1)) > 0n && size > 0 : BigInt(item.slice(0, item.indexOf("-"))) < BigInt(size)));
}

export const byteRanges: PropertyGroup = {
  subject: "Range header parsing",
  properties: [
    {
      name: "any header is judged well-formed or not, never an error",
      property: fc.property(fc.oneof(fc.string(), nearRange, wellFormed), (header) => typeof isWellFormedByteRange(header) === "boolean"),
    },
    {
      name: "every byte range set the RFC allows is taken as well-formed",
      property: fc.property(wellFormed, (header) => isWellFormedByteRange(header)),
    },
    {
      name: "a header taken as well-formed is parsed by send into ranges within the file, or answered 416",
      property: fc.property(fc.oneof(nearRange, wellFormed, fc.string()), fileSize, (header, size) => {
        fc.pre(isWellFormedByteRange(header));
        const ranges = rangeParser(size, byteRangeForSize(header, size), { combine: true });
        if (ranges === -1) return true;
        if (ranges === -2) return false;
        return ranges.length > 0 && ranges.every(({ start, end }) => Number.isSafeInteger(start) && 0 <= start && start <= end && end <= size - 1);
      }),
    },
    {
      name: "a well-formed range set with an item inside the file gets bytes of it, never a 416",
      property: fc.property(wellFormed, fileSize, (header, size) => {
        const ranges = rangeParser(size, byteRangeForSize(header, size), { combine: true });
        return fits(header, size) ? Array.isArray(ranges) && ranges.length > 0 : ranges === -1;
      }),
    },
    {
      name: "a storage range resolves within the object or is refused as not satisfiable, nothing else",
      property: fc.property(fc.oneof(fc.integer(), fc.double()), fc.oneof(fc.integer(), fc.double()), fileSize, (start, end, size) => {
        try {
          const resolved = resolveRange({ start, end }, size);
          return resolved.start === start && resolved.start <= resolved.end && resolved.end <= size - 1;
        } catch (error) {
          return error instanceof RangeNotSatisfiableError && error.status === 416;
        }
      }),
    },
  ],
};

import fc from "fast-check";
import { AppError } from "../../lib/errors";
import { declaredImageSize, tiffDirectorySize, tiffLayout } from "../../lib/uploads/image-header";
import type { DeclaredSize } from "../../lib/uploads/image-header";
import { overPixelLimit } from "../../lib/uploads/ingest";
import { tiledDeflatePageHeader, writeTiff } from "../support/crafted-images";
import type { PropertyGroup } from "./fuzz-parameters";

const IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/heic", "image/heif", "image/tiff"] as const;

function isDeclaredSize(result: DeclaredSize): boolean {
  if (result.found !== "size") return result.found === "incomplete" || result.found === "none";
  return [result.width, result.height].every((side) => Number.isSafeInteger(side) && side > 0);
}

/** Headers that start the way a real one of the type does, so that parsing gets past the signature. */
const SIGNATURES: Readonly<Record<(typeof IMAGE_TYPES)[number], readonly number[]>> = {
  "image/jpeg": [0xff, 0xd8],
  "image/png": [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52],
  "image/gif": [0x47, 0x49, 0x46, 0x38, 0x39, 0x61],
  "image/webp": [0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50],
  "image/avif": [0, 0, 0, 0x1c, 0x66, 0x74, 0x79, 0x70, 0x61, 0x76, 0x69, 0x66],
  "image/heic": [0, 0, 0, 0x18, 0x66, 0x74, 0x79, 0x70, 0x68, 0x65, 0x69, 0x63],
  "image/heif": [0, 0, 0, 0x18, 0x66, 0x74, 0x79, 0x70, 0x6d, 0x69, 0x66, 0x31],
  "image/tiff": [0x49, 0x49, 0x2a, 0x00],
};

const signedHeader = fc
  .tuple(fc.constantFrom(...IMAGE_TYPES), fc.uint8Array({ maxLength: 2048 }))
  .map(([mime, rest]) => ({ mime, head: Buffer.concat([Buffer.from(SIGNATURES[mime]), rest]) }));

const side = fc.integer({ min: 1, max: 65_535 });

/** A JPEG segment that may come before the frame header: an APPn, a comment, a quantisation or Huffman table. */
const jpegSegment = fc
  .tuple(fc.constantFrom(0xe0, 0xe1, 0xe2, 0xed, 0xee, 0xfe, 0xdb, 0xc4, 0xdd), fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 3 }))
  .map(([marker, data, fill]) => {
    const segment = Buffer.alloc(fill + 4 + data.length, 0xff);
    segment[fill + 1] = marker;
    segment.writeUInt16BE(data.length + 2, fill + 2);
    segment.set(data, fill + 4);
    return segment;
  });

function jpegHeader(segments: readonly Buffer[], width: number, height: number): { bytes: Buffer; frameEnd: number } {
  const frame = Buffer.from([0xff, 0xc2, 0x00, 0x11, 0x08, 0, 0, 0, 0, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
  frame.writeUInt16BE(height, 5);
  frame.writeUInt16BE(width, 7);
  const before = Buffer.concat([Buffer.from([0xff, 0xd8]), ...segments]);
  return { bytes: Buffer.concat([before, frame, Buffer.alloc(64, 0x5a)]), frameEnd: before.length + 9 };
}

export const imageHeader: PropertyGroup = {
  subject: "image header parsing and the pixel check",
  properties: [
    {
      name: "any bytes behind any image signature give a size, 'incomplete' or 'none', never an error",
      property: fc.property(signedHeader, ({ mime, head }) => isDeclaredSize(declaredImageSize(head, mime))),
    },
    {
      name: "any bytes at all, as any image type, give a size, 'incomplete' or 'none', never an error",
      property: fc.property(fc.constantFrom(...IMAGE_TYPES), fc.uint8Array({ maxLength: 1024 }), (mime, bytes) =>
        isDeclaredSize(declaredImageSize(Buffer.from(bytes), mime)),
      ),
    },
    {
      name: "a JPEG's frame header is found behind any segments, and every cut before its end is 'incomplete'",
      runs: 150,
      property: fc.property(fc.array(jpegSegment, { maxLength: 6 }), side, side, fc.nat(), (segments, width, height, cutSeed) => {
        const { bytes, frameEnd } = jpegHeader(segments, width, height);
        const whole = declaredImageSize(bytes, "image/jpeg");
        const cut = declaredImageSize(bytes.subarray(0, 2 + (cutSeed % (frameEnd - 2))), "image/jpeg");
        return whole.found === "size" && whole.width === width && whole.height === height && cut.found === "incomplete";
      }),
    },
    {
      name: "a TIFF's first page size is read in either byte order, after any gap, or is 'incomplete' when cut short",
      runs: 150,
      property: fc.property(fc.constantFrom("II" as const, "MM" as const), side, side, fc.nat({ max: 4096 }), fc.nat(), (order, width, height, gap, cutSeed) => {
        const tiff = writeTiff(order, [tiledDeflatePageHeader(width, height)], gap);
        const whole = declaredImageSize(tiff, "image/tiff");
        const cut = declaredImageSize(tiff.subarray(0, cutSeed % (8 + gap + 64)), "image/tiff");
        return whole.found === "size" && whole.width === width && whole.height === height && cut.found === "incomplete";
      }),
    },
    {
      name: "a TIFF directory of any entries, classic or BigTIFF, in either byte order, never makes the reader fail",
      property: fc.property(fc.boolean(), fc.boolean(), fc.uint8Array({ maxLength: 600 }), (littleEndian, bigTiff, directory) => {
        return isDeclaredSize(tiffDirectorySize(Buffer.from(directory), { littleEndian, bigTiff, directoryAt: 16 }));
      }),
    },
    {
      name: "a TIFF header's directory offset is either usable (past the header, a safe integer) or refused",
      property: fc.property(fc.constantFrom([0x49, 0x49], [0x4d, 0x4d]), fc.uint8Array({ minLength: 0, maxLength: 20 }), (order, rest) => {
        const layout = tiffLayout(Buffer.from([...order, ...rest]));
        if (typeof layout === "string") return true;
        return Number.isSafeInteger(layout.directoryAt) && layout.directoryAt >= (layout.bigTiff ? 16 : 8);
      }),
    },
    {
      name: "an image is refused exactly when its declared pixels exceed the limit, with a 422 image_too_large",
      property: fc.property(side, side, fc.integer({ min: 1, max: 2 ** 32 }), (width, height, maxPixels) => {
        const refusal = overPixelLimit(width, height, maxPixels);
        if (width * height <= maxPixels) return refusal === undefined;
        return refusal instanceof AppError && refusal.status === 422 && refusal.code === "image_too_large" && refusal.message.includes(`${width}×${height}`);
      }),
    },
  ],
};

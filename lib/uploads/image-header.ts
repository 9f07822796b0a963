import { imageSize } from "image-size";

/**
 * How far into an upload its image header is read before anything is stored. Most formats state
 * their size in the first bytes, but a JPEG may carry metadata segments (EXIF, ICC, comments) ahead
 * of its frame header: an image whose size is not found within this many bytes is refused rather
 * than stored unchecked. A TIFF says in its first bytes where its first directory is, and libtiff
 * writes it after the image data: one that lies further than this is picked out of the stream as it
 * passes instead (at most this many bytes of it are held).
 */
export const IMAGE_HEADER_READ_LIMIT = 1024 * 1024;

export type DeclaredSize =
  | { readonly found: "size"; readonly width: number; readonly height: number }
  /** The header goes on past the bytes given: read more. */
  | { readonly found: "incomplete" }
  /** These bytes hold no size that can be made out (a damaged file); reading more would not help. */
  | { readonly found: "none" };

const INCOMPLETE: DeclaredSize = { found: "incomplete" };
const NONE: DeclaredSize = { found: "none" };

/**
 * The size (of the first frame or page) that an image's header declares, read from its first bytes
 * without decoding; `mime` is the sniffed type. JPEG and TIFF, whose headers may lie far in, are
 * walked structure by structure so that a cut-off header is told apart from a damaged one.
 */
export function declaredImageSize(head: Buffer, mime: string): DeclaredSize {
  if (mime === "image/jpeg") return jpegSize(head);
  if (mime === "image/tiff") return tiffSize(head);
  try {
    const { width, height } = imageSize(head);
    return width && height ? { found: "size", width, height } : NONE;
  } catch {
    // image-size cannot tell a header cut off by the end of `head` from a damaged one.
    return INCOMPLETE;
  }
}

/** Start of frame markers (SOF0-SOF15 but DHT, JPG and DAC, which share the range). */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Walks the segments after SOI up to the first frame header (ITU T.81 B.1.1). */
function jpegSize(head: Buffer): DeclaredSize {
  let at = 2;
  for (;;) {
    if (at >= head.length) return INCOMPLETE;
    if (head[at] !== 0xff) return NONE;
    // Any number of 0xFF fill bytes may precede a marker code.
    while (at < head.length && head[at] === 0xff) at++;
    if (at >= head.length) return INCOMPLETE;
    const marker = head[at]!;
    at++;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    // A stuffed zero, another SOI, the end of the image or a scan before any frame header.
    if (marker === 0x00 || marker === 0xd8 || marker === 0xd9 || marker === 0xda) return NONE;
    if (at + 2 > head.length) return INCOMPLETE;
    const length = head.readUInt16BE(at);
    if (length < 2) return NONE;
    if (isStartOfFrame(marker)) {
      // Length, sample precision, then the number of lines and of samples per line.
      if (at + 7 > head.length) return INCOMPLETE;
      const height = head.readUInt16BE(at + 3);
      const width = head.readUInt16BE(at + 5);
      // A height of 0 is given later (DNL): not something a photo needs.
      return width > 0 && height > 0 ? { found: "size", width, height } : NONE;
    }
    at += length;
  }
}

const TIFF_IMAGE_WIDTH = 256;
const TIFF_IMAGE_LENGTH = 257;
const TIFF_SHORT = 3;
const TIFF_LONG = 4;
const TIFF_LONG8 = 16;

/** How a TIFF is laid out, from its header: byte order, classic or BigTIFF, and where its first directory (page one) starts. */
export interface TiffLayout {
  readonly littleEndian: boolean;
  readonly bigTiff: boolean;
  readonly directoryAt: number;
}

/** The layout from a TIFF's first bytes (8, or 16 for BigTIFF). */
export function tiffLayout(head: Buffer): TiffLayout | "incomplete" | "none" {
  if (head.length < 8) return "incomplete";
  const littleEndian = head[0] === 0x49;
  const bigTiff = (littleEndian ? head.readUInt16LE(2) : head.readUInt16BE(2)) === 43;
  const headerBytes = bigTiff ? 16 : 8;
  if (head.length < headerBytes) return "incomplete";
  const directoryAt = bigTiff
    ? Number(littleEndian ? head.readBigUInt64LE(8) : head.readBigUInt64BE(8))
    : littleEndian
      ? head.readUInt32LE(4)
      : head.readUInt32BE(4);
  if (directoryAt < headerBytes || !Number.isSafeInteger(directoryAt)) return "none";
  return { littleEndian, bigTiff, directoryAt };
}

/** The size a TIFF's first directory declares; `directory` holds the file's bytes from `layout.directoryAt` on. */
export function tiffDirectorySize(directory: Buffer, layout: TiffLayout): DeclaredSize {
  const { littleEndian: little, bigTiff: big } = layout;
  const u16 = (at: number) => (little ? directory.readUInt16LE(at) : directory.readUInt16BE(at));
  const u32 = (at: number) => (little ? directory.readUInt32LE(at) : directory.readUInt32BE(at));
  const u64 = (at: number) => Number(little ? directory.readBigUInt64LE(at) : directory.readBigUInt64BE(at));
  const countBytes = big ? 8 : 2;
  const entryBytes = big ? 20 : 12;
  if (directory.length < countBytes) return INCOMPLETE;
  const entries = big ? u64(0) : u16(0);
  let width: number | undefined;
  let height: number | undefined;
  for (let index = 0; index < entries && (width === undefined || height === undefined); index++) {
    const entry = countBytes + index * entryBytes;
    if (directory.length < entry + entryBytes) return INCOMPLETE;
    const tag = u16(entry);
    if (tag !== TIFF_IMAGE_WIDTH && tag !== TIFF_IMAGE_LENGTH) continue;
    const type = u16(entry + 2);
    // A value of one SHORT, LONG or LONG8 sits in the entry itself, left-justified.
    const valueAt = entry + (big ? 12 : 8);
    const value = type === TIFF_SHORT ? u16(valueAt) : type === TIFF_LONG ? u32(valueAt) : big && type === TIFF_LONG8 ? u64(valueAt) : undefined;
    if (value === undefined) return NONE;
    if (tag === TIFF_IMAGE_WIDTH) width = value;
    else height = value;
  }
  return width && height ? { found: "size", width, height } : NONE;
}

/** Page one's size, when its directory lies within `head`, in either byte order, classic or BigTIFF. */
function tiffSize(head: Buffer): DeclaredSize {
  const layout = tiffLayout(head);
  if (layout === "incomplete") return INCOMPLETE;
  if (layout === "none") return NONE;
  return head.length <= layout.directoryAt ? INCOMPLETE : tiffDirectorySize(head.subarray(layout.directoryAt), layout);
}

/**
 * Image files built byte by byte, for what no encoder writes on request: a JPEG whose frame
 * header comes after a long run of comment segments, big-endian and multi-page TIFFs, and TIFF
 * headers declaring sizes far too large to encode.
 */

const JPEG_SEGMENT_MAX_DATA = 65_533;

/**
 * SOI, comment (COM) segments holding `commentBytes` in all, then a baseline frame header (SOF0)
 * declaring width×height, then junk where the scan would be. Only the header is meaningful.
 */
export function jpegWithCommentsBeforeFrame(width: number, height: number, commentBytes: number): Buffer {
  const parts = [Buffer.from([0xff, 0xd8])];
  for (let left = commentBytes; left > 0; left -= JPEG_SEGMENT_MAX_DATA) {
    const size = Math.min(left, JPEG_SEGMENT_MAX_DATA);
    const segment = Buffer.alloc(4 + size, "comment ");
    segment.writeUInt16BE(0xfffe, 0);
    segment.writeUInt16BE(size + 2, 2);
    parts.push(segment);
  }
  const frame = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, 0, 0, 0, 0, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
  frame.writeUInt16BE(height, 5);
  frame.writeUInt16BE(width, 7);
  parts.push(frame, Buffer.alloc(4096, 0x5a));
  return Buffer.concat(parts);
}

export type TiffByteOrder = "II" | "MM";

export interface TiffField {
  readonly tag: number;
  readonly type: "short" | "long";
  readonly values: readonly number[];
}

export interface TiffPage {
  /** Written just before the page's directory. */
  readonly data: Buffer;
  /** The directory's fields, given where `data` was written. */
  readonly fields: (dataAt: number) => readonly TiffField[];
}

/**
 * A classic TIFF: the header, `gap` filler bytes, then each page's data and directory, the first
 * directory pointed to by the header and each next one by the directory before it.
 */
export function writeTiff(order: TiffByteOrder, pages: readonly TiffPage[], gap = 0): Buffer {
  const little = order === "II";
  const u16 = (buffer: Buffer, at: number, value: number) => (little ? buffer.writeUInt16LE(value, at) : buffer.writeUInt16BE(value, at));
  const u32 = (buffer: Buffer, at: number, value: number) => (little ? buffer.writeUInt32LE(value, at) : buffer.writeUInt32BE(value, at));
  const header = Buffer.alloc(8);
  header.write(order, 0, "latin1");
  u16(header, 2, 42);
  const parts: Buffer[] = [header, Buffer.alloc(gap, 0xaa)];
  let length = 8 + gap;
  let pointer = { buffer: header, at: 4 };
  for (const page of pages) {
    const dataAt = length;
    parts.push(page.data);
    length += page.data.length;
    if (length % 2 === 1) {
      parts.push(Buffer.alloc(1));
      length += 1;
    }
    const fields = [...page.fields(dataAt)].sort((a, b) => a.tag - b.tag);
    const directoryBytes = 2 + 12 * fields.length + 4;
    const width = (field: TiffField) => (field.type === "short" ? 2 : 4) * field.values.length;
    const overflow = fields.reduce((sum, field) => sum + (width(field) > 4 ? width(field) : 0), 0);
    const directory = Buffer.alloc(directoryBytes + overflow);
    u16(directory, 0, fields.length);
    let overflowAt = directoryBytes;
    fields.forEach((field, index) => {
      const entry = 2 + 12 * index;
      u16(directory, entry, field.tag);
      u16(directory, entry + 2, field.type === "short" ? 3 : 4);
      u32(directory, entry + 4, field.values.length);
      let valueAt = entry + 8;
      if (width(field) > 4) {
        u32(directory, entry + 8, length + overflowAt);
        valueAt = overflowAt;
        overflowAt += width(field);
      }
      field.values.forEach((value, i) => (field.type === "short" ? u16(directory, valueAt + 2 * i, value) : u32(directory, valueAt + 4 * i, value)));
    });
    u32(pointer.buffer, pointer.at, length);
    pointer = { buffer: directory, at: 2 + 12 * fields.length };
    parts.push(directory);
    length += directory.length;
  }
  return Buffer.concat(parts);
}

const short = (tag: number, ...values: number[]): TiffField => ({ tag, type: "short", values });
const long = (tag: number, ...values: number[]): TiffField => ({ tag, type: "long", values });

/** One uncompressed 8-bit RGB page of a single colour, in one strip. */
export function solidRgbPage(width: number, height: number, [red, green, blue]: readonly [number, number, number]): TiffPage {
  const data = Buffer.alloc(width * height * 3);
  for (let at = 0; at < data.length; at += 3) data.set([red, green, blue], at);
  return {
    data,
    fields: (dataAt) => [
      long(256, width),
      long(257, height),
      short(258, 8, 8, 8),
      short(259, 1),
      short(262, 2),
      long(273, dataAt),
      short(277, 3),
      long(278, height),
      long(279, data.length),
      short(284, 1),
    ],
  };
}

/** A tiled, Deflate-compressed RGB page declaring width×height, whose one tile is junk: a header, not an image. */
export function tiledDeflatePageHeader(width: number, height: number): TiffPage {
  const data = Buffer.alloc(64, 0x78);
  return {
    data,
    fields: (dataAt) => [
      long(256, width),
      long(257, height),
      short(258, 8, 8, 8),
      short(259, 8),
      short(262, 2),
      short(277, 3),
      short(284, 1),
      short(322, 256),
      short(323, 256),
      long(324, dataAt),
      long(325, data.length),
    ],
  };
}

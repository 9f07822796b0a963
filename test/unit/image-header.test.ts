import fs from "node:fs";
import path from "node:path";
import { declaredImageSize, tiffDirectorySize, tiffLayout } from "../../lib/uploads/image-header";
import { jpegWithCommentsBeforeFrame, solidRgbPage, tiledDeflatePageHeader, writeTiff } from "../support/crafted-images";

const fixture = (relative: string) => fs.readFileSync(path.join(__dirname, "..", "fixtures", relative));

/** Every prefix of `bytes` ending at one of `cuts`. */
function prefixes(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  return cuts.map((cut) => bytes.subarray(0, cut));
}

describe("JPEG", () => {
  const bomb = jpegWithCommentsBeforeFrame(50_000, 50_000, 300_000);
  const frameAt = bomb.indexOf(Buffer.from([0xff, 0xc0]));

  test("the frame header is found behind 300 kB of comment segments", () => {
    expect(declaredImageSize(bomb, "image/jpeg")).toEqual({ found: "size", width: 50_000, height: 50_000 });
  });

  test("cut anywhere before the end of the frame header, including exactly between segments, the header is incomplete, never a size", () => {
    const segmentEnds: number[] = [];
    for (let at = 2; at < frameAt; at += 2 + bomb.readUInt16BE(at + 2)) segmentEnds.push(at);
    const cuts = [2, 3, 4, 5, 4100, 65_536, 131_072, 262_144, ...segmentEnds, ...segmentEnds.map((end) => end + 1), frameAt, frameAt + 8];
    for (const head of prefixes(bomb, cuts)) expect(declaredImageSize(head, "image/jpeg")).toEqual({ found: "incomplete" });
  });

  test("a camera photo's size is read past its EXIF segment", () => {
    // Stored 1200 wide and 1800 high; Orientation 6 turns it for display.
    expect(declaredImageSize(fixture("exif_jpeg/orientation_6.jpg"), "image/jpeg")).toEqual({ found: "size", width: 1200, height: 1800 });
  });

  test("a progressive (SOF2) frame header and fill bytes before a marker are understood", () => {
    const bytes = Buffer.from([0xff, 0xd8, 0xff, 0xff, 0xff, 0xc2, 0x00, 0x0b, 0x08, 0x00, 0x20, 0x00, 0x40, 0x01, 0x01, 0x11, 0x00]);
    expect(declaredImageSize(bytes, "image/jpeg")).toEqual({ found: "size", width: 64, height: 32 });
  });

  test("a Huffman table segment (0xC4, inside the frame marker range) is skipped, not taken for a frame header", () => {
    const table = Buffer.from([0xff, 0xc4, 0x00, 0x08, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f]);
    const frame = Buffer.from([0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x10, 0x00, 0x18, 0x01, 0x01, 0x11, 0x00]);
    expect(declaredImageSize(Buffer.concat([Buffer.from([0xff, 0xd8]), table, frame]), "image/jpeg")).toEqual({ found: "size", width: 24, height: 16 });
  });

  test("a scan before any frame header, or lost marker sync, declares nothing: reading on would not help", () => {
    expect(declaredImageSize(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08, 1, 2, 3, 4, 5, 6]), "image/jpeg")).toEqual({ found: "none" });
    expect(declaredImageSize(Buffer.from([0xff, 0xd8, 0xff, 0xfe, 0x00, 0x04, 1, 2, 0x12, 0x34]), "image/jpeg")).toEqual({ found: "none" });
  });
});

describe("TIFF", () => {
  test.each(["II", "MM"] as const)("byte order %s: page one's size is read from a directory that lies far into the file", (order) => {
    const bytes = writeTiff(order, [solidRgbPage(40, 30, [255, 0, 0]), solidRgbPage(400, 300, [0, 0, 255])], 600_000);
    expect(declaredImageSize(bytes, "image/tiff")).toEqual({ found: "size", width: 40, height: 30 });
  });

  test.each(["II", "MM"] as const)("byte order %s: a tiled, compressed 60000×60000 header is read without any pixel data", (order) => {
    const bytes = writeTiff(order, [tiledDeflatePageHeader(60_000, 60_000)], 300_000);
    expect(declaredImageSize(bytes, "image/tiff")).toEqual({ found: "size", width: 60_000, height: 60_000 });
  });

  test("cut before or inside the directory, the header is incomplete", () => {
    const bytes = writeTiff("II", [tiledDeflatePageHeader(60_000, 60_000)], 300_000);
    const directoryAt = bytes.readUInt32LE(4);
    for (const head of prefixes(bytes, [4, 7, 8, 4100, directoryAt, directoryAt + 1, directoryAt + 2, directoryAt + 13])) {
      expect(declaredImageSize(head, "image/tiff")).toEqual({ found: "incomplete" });
    }
  });

  test("only the directory's own entries count: bytes after them that look like a width entry change nothing", () => {
    const bytes = writeTiff("II", [tiledDeflatePageHeader(60_000, 60_000)]);
    const directoryAt = bytes.readUInt32LE(4);
    const entries = bytes.readUInt16LE(directoryAt);
    const afterEntries = directoryAt + 2 + 12 * entries;
    // A non-zero next-directory pointer, then, one entry's length after the real ones, a fake ImageWidth of 16.
    const pointerAndFiller = Buffer.from([1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const fake = Buffer.alloc(12);
    fake.writeUInt16LE(256, 0);
    fake.writeUInt16LE(3, 2);
    fake.writeUInt32LE(1, 4);
    fake.writeUInt16LE(16, 8);
    const crafted = Buffer.concat([bytes.subarray(0, afterEntries), pointerAndFiller, fake, Buffer.alloc(16)]);
    expect(declaredImageSize(crafted, "image/tiff")).toEqual({ found: "size", width: 60_000, height: 60_000 });
  });

  test.each(["II", "MM"] as const)("byte order %s: the layout from the first 8 bytes says where page one's directory is; read from there alone it gives the size", (order) => {
    const bytes = writeTiff(order, [tiledDeflatePageHeader(60_000, 40_000)], 3_000_000);
    const layout = tiffLayout(bytes.subarray(0, 8));
    expect(layout).toEqual({ littleEndian: order === "II", bigTiff: false, directoryAt: expect.any(Number) });
    if (typeof layout !== "object") return;
    expect(layout.directoryAt).toBeGreaterThan(3_000_000);
    expect(tiffDirectorySize(bytes.subarray(layout.directoryAt), layout)).toEqual({ found: "size", width: 60_000, height: 40_000 });
    expect(tiffDirectorySize(bytes.subarray(layout.directoryAt, layout.directoryAt + 20), layout)).toEqual({ found: "incomplete" });
    expect(tiffLayout(bytes.subarray(0, 6))).toBe("incomplete");
  });

  test.each([
    ["little-endian", Buffer.from("49492b00080000001000000000000000", "hex"), (b: Buffer, at: number, v: number) => b.writeUInt16LE(v, at), (b: Buffer, at: number, v: bigint) => b.writeBigUInt64LE(v, at)],
    ["big-endian", Buffer.from("4d4d002b000800000000000000000010", "hex"), (b: Buffer, at: number, v: number) => b.writeUInt16BE(v, at), (b: Buffer, at: number, v: bigint) => b.writeBigUInt64BE(v, at)],
  ])("BigTIFF, %s: 64-bit offsets, counts and LONG8 sizes", (_order, header, u16, u64) => {
    const directory = Buffer.alloc(8 + 2 * 20 + 8);
    u64(directory, 0, 2n);
    u16(directory, 8, 256);
    u16(directory, 10, 16);
    u64(directory, 12, 1n);
    u64(directory, 20, 70_000n);
    u16(directory, 28, 257);
    u16(directory, 30, 3);
    u64(directory, 32, 1n);
    u16(directory, 40, 5_000);
    expect(declaredImageSize(Buffer.concat([header, directory]), "image/tiff")).toEqual({ found: "size", width: 70_000, height: 5_000 });
    expect(declaredImageSize(Buffer.concat([header, directory.subarray(0, 30)]), "image/tiff")).toEqual({ found: "incomplete" });
  });

  test("a directory without a size, or one pointing into the header, declares nothing", () => {
    const withoutSize = writeTiff("II", [{ data: Buffer.alloc(0), fields: () => [{ tag: 259, type: "short", values: [1] }] }]);
    expect(declaredImageSize(withoutSize, "image/tiff")).toEqual({ found: "none" });
    expect(declaredImageSize(Buffer.from("49492a000200000000000000", "hex"), "image/tiff")).toEqual({ found: "none" });
  });
});

describe("other formats", () => {
  test("a PNG's size is read from its first bytes; cut inside its header it is incomplete", () => {
    const png = fixture("hostile_images/pixel_bomb_65536x65536.png");
    expect(declaredImageSize(png, "image/png")).toEqual({ found: "size", width: 65_536, height: 65_536 });
    expect(declaredImageSize(png.subarray(0, 12), "image/png")).toEqual({ found: "incomplete" });
  });

  test("WebP and GIF sizes are read", () => {
    expect(declaredImageSize(fixture("image_formats/webp_lossy_exif.webp"), "image/webp")).toMatchObject({ found: "size" });
    expect(declaredImageSize(fixture("image_formats/gif_animated_30frames.gif"), "image/gif")).toEqual({ found: "size", width: 80, height: 80 });
  });
});

/**
 * The image library against real sharp and the real fixtures: what a person looking at the
 * variants would notice (upright, un-mirrored, no location leaked, transparency right, animations
 * still moving, nothing blown up), and what the owner is told when an image is refused.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import type { Sharp } from "sharp";
import { execFile } from "node:child_process";
import { ImageProcessingError, processImage, rgbaToThumbHash } from "../../lib/processing/images";
import type { ImageProcessingOptions, ImageVariantFile, ProcessedImage } from "../../lib/processing/images";

const FIXTURES = path.join(__dirname, "..", "fixtures");
const fixture = (relative: string) => path.join(FIXTURES, relative);

let root: string;
let counter = 0;

beforeAll(async () => {
  root = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-images-"));
});

afterAll(async () => {
  await fs.promises.rm(root, { recursive: true, force: true });
});

/**
 * Runs the real `thumbhash` package (an ES module, which Jest cannot load) in a child Node process:
 * `call` is an expression over `t` (the module) and `input`, its JSON result is returned.
 */
function thumbhashPackage<T>(call: string, input: unknown): Promise<T> {
  const script = `import * as t from "thumbhash"; let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const input = JSON.parse(s); process.stdout.write(JSON.stringify(${call})); });`;
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ["--input-type=module", "-e", script], { cwd: path.join(__dirname, "..", "..") }, (error, stdout) =>
      error ? reject(error) : resolve(JSON.parse(stdout) as T),
    );
    child.stdin?.end(JSON.stringify(input));
  });
}

function hashBytes(placeholder: string): number[] {
  return [...Buffer.from(placeholder, "base64")];
}

/** A fresh output directory (not created: processImage creates it only when it has something to write). */
function outputDir(): string {
  counter += 1;
  return path.join(root, `out-${counter}`);
}

async function run(file: string, options?: ImageProcessingOptions): Promise<{ result: ProcessedImage; dir: string }> {
  const dir = outputDir();
  const result = await processImage({ path: file }, dir, options);
  return { result, dir };
}

async function refusal(file: string, options?: ImageProcessingOptions): Promise<{ error: ImageProcessingError; dir: string; ms: number }> {
  const dir = outputDir();
  const started = Date.now();
  const error: unknown = await processImage({ path: file }, dir, options).then(
    () => new Error("expected a refusal"),
    (caught: unknown) => caught,
  );
  if (!(error instanceof ImageProcessingError)) throw error;
  return { error, dir, ms: Date.now() - started };
}

function filesIn(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

function variant(result: ProcessedImage, name: ImageVariantFile["name"]): ImageVariantFile {
  const found = result.variants.find((v) => v.name === name);
  if (found === undefined) throw new Error(`no ${name} variant`);
  return found;
}

/** 32×32 greyscale thumbnail of what a viewer sees (EXIF orientation applied, if any is left). */
async function signature(input: string | Buffer, transform: (image: Sharp) => Sharp = (image) => image): Promise<Buffer> {
  return transform(sharp(input, { autoOrient: true })).resize(32, 32, { fit: "fill" }).greyscale().raw().toBuffer();
}

/** Mean absolute difference, 0-255. */
function difference(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let total = 0;
  for (let i = 0; i < a.length; i += 1) total += Math.abs(a[i]! - b[i]!);
  return total / a.length;
}

/** Every metadata block a user could be identified or located by is absent. */
async function expectNoMetadata(file: string, words: readonly string[] = []): Promise<void> {
  const metadata = await sharp(file).metadata();
  expect(metadata.exif).toBeUndefined();
  expect(metadata.xmp).toBeUndefined();
  expect(metadata.iptc).toBeUndefined();
  expect(metadata.icc).toBeUndefined();
  expect(metadata.orientation).toBeUndefined();
  const bytes = await fs.promises.readFile(file);
  for (const word of ["Exif", "GPS", "xpacket", ...words]) expect(bytes.includes(Buffer.from(word, "latin1"))).toBe(false);
}

async function expectVariantFiles(result: ProcessedImage, dir: string): Promise<void> {
  expect(result.variants.map((v) => path.basename(v.path)).sort()).toEqual(["display-jpeg.jpg", "display.webp", "thumb.webp"]);
  expect(filesIn(dir).sort()).toEqual(["display-jpeg.jpg", "display.webp", "thumb.webp"]);
  for (const v of result.variants) {
    expect(path.dirname(v.path)).toBe(dir);
    expect(v.bytes).toBe((await fs.promises.stat(v.path)).size);
    const metadata = await sharp(v.path).metadata();
    expect(metadata.format).toBe(v.mime === "image/webp" ? "webp" : "jpeg");
    expect([metadata.width, metadata.height]).toEqual([v.width, v.height]);
    expect(metadata.space).toBe("srgb");
    expect(metadata.depth).toBe("uchar");
  }
}

describe("orientation", () => {
  let upright: Buffer;

  beforeAll(async () => {
    const { result } = await run(fixture("exif_jpeg/orientation_1.jpg"));
    upright = await signature(variant(result, "display").path);
  });

  test("the reference (Orientation 1) stays 1800×1200 and the signature tells a mirrored picture apart", async () => {
    const { result } = await run(fixture("exif_jpeg/orientation_1.jpg"));
    expect([result.width, result.height]).toEqual([1800, 1200]);
    // The comparison used below can see mirroring and rotation at all:
    expect(difference(upright, await signature(variant(result, "display").path, (image) => image.flop()))).toBeGreaterThan(30);
    expect(difference(upright, await signature(fixture("exif_jpeg/orientation_6.jpg"), (image) => image.rotate(180)))).toBeGreaterThan(30);
  });

  test.each([
    ["orientation_6.jpg", "stored 1200×1800 portrait, rotate 90° clockwise"],
    ["orientation_5.jpg", "stored 1200×1800 portrait, transposed (rotated and mirrored)"],
    ["orientation_2.jpg", "stored 1800×1200, mirrored"],
  ])("%s (%s) comes out as the upright, un-mirrored 1800×1200 landscape", async (name) => {
    const { result, dir } = await run(fixture(`exif_jpeg/${name}`));
    expect([result.width, result.height]).toEqual([1800, 1200]);
    expect(result.animated).toBe(false);
    expect(result.frames).toBe(1);
    expect([variant(result, "display").width, variant(result, "display").height]).toEqual([1600, 1067]);
    expect([variant(result, "display-jpeg").width, variant(result, "display-jpeg").height]).toEqual([1600, 1067]);
    expect([variant(result, "thumb").width, variant(result, "thumb").height]).toEqual([320, 213]);
    await expectVariantFiles(result, dir);
    for (const v of result.variants) {
      // The pixels are upright: no Orientation tag is left for a viewer to apply (or apply twice).
      expect((await sharp(v.path).metadata()).orientation).toBeUndefined();
      expect(difference(upright, await signature(v.path))).toBeLessThan(6);
    }
    expect(await thumbhashPackage<number>("t.thumbHashToApproximateAspectRatio(input)", hashBytes(result.placeholder))).toBeGreaterThan(1.2);
  });
});

describe("metadata is stripped", () => {
  test("a camera JPEG with GPS: no EXIF, XMP, IPTC or ICC in any variant, nothing of the camera in the bytes", async () => {
    const source = fixture("exif_jpeg/gps_nikon_coolpix_p6000.jpg");
    const before = await sharp(source).metadata();
    expect(before.exif?.includes(Buffer.from("COOLPIX"))).toBe(true);
    expect(before.xmp).toBeDefined();

    const { result, dir } = await run(source);
    expect([result.width, result.height]).toEqual([640, 480]);
    await expectVariantFiles(result, dir);
    for (const v of result.variants) await expectNoMetadata(v.path, ["NIKON", "COOLPIX", "Nikon"]);
    // Between the boxes: the thumb shrinks, display keeps the source size.
    expect([variant(result, "thumb").width, variant(result, "thumb").height]).toEqual([320, 240]);
    expect([variant(result, "display").width, variant(result, "display").height]).toEqual([640, 480]);
  });

  test("a WebP carrying EXIF, XMP and an ICC profile: all of it is gone from the WebP and JPEG variants", async () => {
    const source = fixture("image_formats/webp_lossy_exif.webp");
    const before = await sharp(source).metadata();
    expect(before.exif).toBeDefined();
    expect(before.icc).toBeDefined();

    const { result, dir } = await run(source);
    expect(result.format).toBe("webp");
    expect(result.animated).toBe(false);
    await expectVariantFiles(result, dir);
    for (const v of result.variants) await expectNoMetadata(v.path, ["Canon", "Restivo", "Lightroom"]);
    // The colours survived the profile conversion.
    const original = await signature(source);
    expect(difference(original, await signature(variant(result, "display").path))).toBeLessThan(4);
  });
});

describe("colour", () => {
  const colour = { r: 200, g: 60, b: 40 };

  async function centre(file: string): Promise<number[]> {
    const { data } = await sharp(file).extract({ left: 16, top: 12, width: 1, height: 1 }).raw().toBuffer({ resolveWithObject: true });
    return [...data.subarray(0, 3)];
  }

  function expectClose(actual: number[], expected: number[], tolerance: number): void {
    actual.forEach((value, i) => expect(Math.abs(value - expected[i]!)).toBeLessThanOrEqual(tolerance));
  }

  async function solid(): Promise<Sharp> {
    return sharp({ create: { width: 48, height: 32, channels: 3, background: colour } });
  }

  test("a Display P3 image is converted to sRGB from its profile (not shown with its P3 numbers)", async () => {
    const file = path.join(root, "p3.png");
    await (await solid()).withIccProfile("p3").png().toFile(file);
    const stored = [...(await sharp(file, { ignoreIcc: true }).raw().toBuffer()).subarray(0, 3)];
    expect(Math.abs(stored[1]! - colour.g)).toBeGreaterThan(10); // the P3 numbers differ from the sRGB ones

    const { result } = await run(file);
    for (const v of result.variants) {
      expect((await sharp(v.path).metadata()).icc).toBeUndefined();
      expectClose(await centre(v.path), [colour.r, colour.g, colour.b], 4);
    }
  });

  test("a CMYK JPEG becomes an sRGB image of the same colour", async () => {
    const file = path.join(root, "cmyk.jpg");
    await (await solid()).toColourspace("cmyk").jpeg({ quality: 100 }).toFile(file);
    expect((await sharp(file).metadata()).space).toBe("cmyk");

    const { result, dir } = await run(file);
    await expectVariantFiles(result, dir);
    for (const v of result.variants) {
      expect((await sharp(v.path).metadata()).channels).toBe(3);
      expectClose(await centre(v.path), [colour.r, colour.g, colour.b], 30);
    }
  });

  test("a 16-bit PNG becomes 8-bit variants of the same colour", async () => {
    const file = path.join(root, "rgb16.png");
    await (await solid()).toColourspace("rgb16").png().toFile(file);
    expect((await sharp(file).metadata()).depth).toBe("ushort");

    const { result, dir } = await run(file);
    await expectVariantFiles(result, dir);
    for (const v of result.variants) expectClose(await centre(v.path), [colour.r, colour.g, colour.b], 4);
  });
});

describe("transparency", () => {
  test("the RGBA PNG keeps its alpha in WebP and is flattened onto white (no black box) in the JPEG", async () => {
    const source = fixture("image_formats/png_rgba_alpha.png");
    const { result, dir } = await run(source);
    expect([result.width, result.height]).toEqual([2048, 1536]);
    await expectVariantFiles(result, dir);
    const display = variant(result, "display");
    const jpeg = variant(result, "display-jpeg");
    expect([display.width, display.height]).toEqual([1600, 1200]);
    expect([variant(result, "thumb").width, variant(result, "thumb").height]).toEqual([320, 240]);

    // Where the source is fully transparent or fully opaque, at display size.
    const alpha = await sharp(source).resize(1600, 1200, { fit: "fill" }).extractChannel(3).raw().toBuffer();
    const webp = await sharp(display.path).raw().toBuffer({ resolveWithObject: true });
    expect(webp.info.channels).toBe(4);
    const white = await sharp(jpeg.path).raw().toBuffer({ resolveWithObject: true });
    expect(white.info.channels).toBe(3);
    expect((await sharp(jpeg.path).metadata()).hasAlpha).toBe(false);

    // Counted, then asserted once: an expect per pixel would take minutes.
    let transparent = 0;
    let opaque = 0;
    let alphaLost = 0;
    let jpegSumOverTransparent = 0;
    let darkOverTransparent = 0;
    for (let i = 0; i < alpha.length; i += 1) {
      if (alpha[i] === 0) {
        transparent += 1;
        if (webp.data[i * 4 + 3]! > 8) alphaLost += 1;
        const pixel = Math.min(white.data[i * 3]!, white.data[i * 3 + 1]!, white.data[i * 3 + 2]!);
        jpegSumOverTransparent += pixel;
        if (pixel < 230) darkOverTransparent += 1; // JPEG ringing next to edges at most
      } else if (alpha[i] === 255) {
        opaque += 1;
        if (webp.data[i * 4 + 3]! < 247) alphaLost += 1;
      }
    }
    expect(transparent).toBeGreaterThan(100_000);
    expect(opaque).toBeGreaterThan(100);
    expect(alphaLost).toBe(0);
    expect(jpegSumOverTransparent / transparent).toBeGreaterThan(250);
    expect(darkOverTransparent / transparent).toBeLessThan(0.001);
    const average = await thumbhashPackage<{ a: number }>("t.thumbHashToAverageRGBA(input)", hashBytes(result.placeholder));
    expect(average.a).toBeLessThan(0.5);
  });
});

describe("animation", () => {
  const gif = fixture("image_formats/gif_animated_30frames.gif");

  /** Each frame shown, one per `step` milliseconds, flattened onto white. */
  async function timeline(file: string, step: number): Promise<Buffer[]> {
    const metadata = await sharp(file, { animated: true }).metadata();
    const pages = metadata.pages ?? 1;
    const frameHeight = metadata.pageHeight ?? metadata.height;
    const raw = await sharp(file, { animated: true }).flatten({ background: "#ffffff" }).raw().toBuffer({ resolveWithObject: true });
    const size = raw.info.width * frameHeight * raw.info.channels;
    const shown: Buffer[] = [];
    for (let page = 0; page < pages; page += 1) {
      const delay = metadata.delay?.[page] ?? step;
      expect(delay % step).toBe(0);
      for (let k = 0; k < delay / step; k += 1) shown.push(raw.data.subarray(page * size, (page + 1) * size));
    }
    return shown;
  }

  test("the 30-frame GIF stays an 80×80 animated WebP showing the same frames for the same time, not a frame strip", async () => {
    const { result, dir } = await run(gif);
    expect(result).toMatchObject({ format: "gif", width: 80, height: 80, animated: true, frames: 30 });
    await expectVariantFiles(result, dir);

    const source = await timeline(gif, 30);
    expect(source).toHaveLength(30);
    for (const name of ["thumb", "display"] as const) {
      const v = variant(result, name);
      expect(v.animated).toBe(true);
      expect([v.width, v.height]).toEqual([80, 80]); // never upscaled, and one frame high
      const metadata = await sharp(v.path, { animated: true }).metadata();
      expect(metadata.pages).toBeGreaterThan(1);
      expect(metadata.pageHeight).toBe(80);
      expect(metadata.loop).toBe(0);
      // libwebp merges runs of identical frames into longer ones; the animation is the same.
      const shown = await timeline(v.path, 30);
      expect(shown).toHaveLength(30);
      shown.forEach((frame, i) => expect(difference(frame, source[i]!)).toBeLessThan(6));
    }

    const still = variant(result, "display-jpeg");
    expect(still.animated).toBe(false);
    const stillMetadata = await sharp(still.path).metadata();
    expect([stillMetadata.width, stillMetadata.height, stillMetadata.pages ?? 1]).toEqual([80, 80, 1]);
  });

  test("an animation with more frames than allowed is refused, and nothing is written", async () => {
    const { error, dir } = await refusal(gif, { maxFrames: 29 });
    expect(error.reason).toBe("too_many_frames");
    expect(error.permanent).toBe(true);
    expect(error.message).toContain("30 frames");
    expect(filesIn(dir)).toEqual([]);
    await expect(run(gif, { maxFrames: 30 })).resolves.toBeDefined();
  });

  test("the pixel limit counts every frame of an animation", async () => {
    // One frame is 6400 pixels, all 30 are 192000.
    const { error, dir } = await refusal(gif, { limitInputPixels: 100_000 });
    expect(error.reason).toBe("pixel_limit");
    expect(filesIn(dir)).toEqual([]);
    await expect(run(gif, { limitInputPixels: 192_000 })).resolves.toBeDefined();
  });
});

describe("sizes", () => {
  test("a small progressive JPEG is never upscaled: every variant keeps 200×133", async () => {
    const { result, dir } = await run(fixture("image_formats/jpeg_progressive_nikon.jpeg"));
    expect([result.width, result.height]).toEqual([200, 133]);
    await expectVariantFiles(result, dir);
    for (const v of result.variants) expect([v.width, v.height]).toEqual([200, 133]);
    for (const v of result.variants) await expectNoMetadata(v.path, ["NIKON", "Kurikhin"]);
  });

  test("variants fit their boxes; the result describes the files", async () => {
    const { result } = await run(fixture("exif_jpeg/orientation_6.jpg"));
    const thumb = variant(result, "thumb");
    expect(Math.max(thumb.width, thumb.height)).toBeLessThanOrEqual(320);
    for (const v of [variant(result, "display"), variant(result, "display-jpeg")]) expect(Math.max(v.width, v.height)).toBeLessThanOrEqual(1600);
    expect(result.variants.map((v) => [v.name, v.mime, v.extension])).toEqual([
      ["thumb", "image/webp", "webp"],
      ["display", "image/webp", "webp"],
      ["display-jpeg", "image/jpeg", "jpg"],
    ]);
    // A small thumb, a display a browser can show quickly.
    expect(thumb.bytes).toBeLessThan(60_000);
    expect(variant(result, "display").bytes).toBeLessThan(600_000);
    expect(Buffer.from(result.placeholder, "base64").length).toBeGreaterThan(5);
    expect(Buffer.from(result.placeholder, "base64").length).toBeLessThan(40);
  });

  test("running again into the same directory replaces the files (a retried job is harmless)", async () => {
    const dir = outputDir();
    const first = await processImage({ path: fixture("image_formats/jpeg_progressive_nikon.jpeg") }, dir);
    const second = await processImage({ path: fixture("image_formats/jpeg_progressive_nikon.jpeg") }, dir);
    expect(second).toEqual(first);
    expect(filesIn(dir).sort()).toEqual(["display-jpeg.jpg", "display.webp", "thumb.webp"]);
  });

  test("sharp's process-wide thread setting is left alone", async () => {
    const before = sharp.concurrency();
    await run(fixture("image_formats/jpeg_progressive_nikon.jpeg"));
    expect(sharp.concurrency()).toBe(before);
  });
});

describe("placeholder", () => {
  test("the ThumbHash port encodes byte for byte what the thumbhash package does", async () => {
    const images: { w: number; h: number; rgba: number[] }[] = [];
    for (const [file, w, h] of [
      ["exif_jpeg/orientation_1.jpg", 100, 67],
      ["image_formats/png_rgba_alpha.png", 100, 75],
      ["image_formats/jpeg_progressive_nikon.jpeg", 67, 100],
      ["image_formats/gif_animated_30frames.gif", 1, 1],
    ] as const) {
      const rgba = await sharp(fixture(file)).resize(w, h, { fit: "fill" }).ensureAlpha().raw().toBuffer();
      images.push({ w, h, rgba: [...rgba] });
    }
    const expected = await thumbhashPackage<number[][]>("input.map((i) => [...t.rgbaToThumbHash(i.w, i.h, i.rgba)])", images);
    expect(images.map((i) => [...rgbaToThumbHash(i.w, i.h, i.rgba)])).toEqual(expected);
    expect(() => rgbaToThumbHash(101, 10, new Uint8Array(101 * 10 * 4))).toThrow("doesn't fit");
  });

  test("the placeholder decodes with the package to a small picture of the image's shape and colour", async () => {
    const { result } = await run(fixture("exif_jpeg/gps_nikon_coolpix_p6000.jpg"));
    const decoded = await thumbhashPackage<{ w: number; h: number; ratio: number }>(
      "(() => { const d = t.thumbHashToRGBA(input); return { w: d.w, h: d.h, ratio: t.thumbHashToApproximateAspectRatio(input) }; })()",
      hashBytes(result.placeholder),
    );
    expect(decoded.w).toBeGreaterThan(decoded.h);
    expect(decoded.ratio).toBeCloseTo(640 / 480, 0);
  });
});

describe("HEIF and AVIF", () => {
  test("the iPhone HEIC is converted if this libvips can decode HEVC, otherwise refused as unsupported_format", async () => {
    const dir = outputDir();
    const outcome = await processImage({ path: fixture("image_formats/heic_iphone7.heic") }, dir).then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    if ("error" in outcome) {
      // sharp's prebuilt libvips has libheif with the AV1 decoder only: HEVC is not built in.
      expect(outcome.error).toBeInstanceOf(ImageProcessingError);
      const error = outcome.error as ImageProcessingError;
      expect(error.reason).toBe("unsupported_format");
      expect(error.permanent).toBe(true);
      expect(error.message).toContain("HEVC");
      expect(error.message).not.toContain(FIXTURES);
      expect(filesIn(dir)).toEqual([]);
    } else {
      const { result } = outcome;
      expect(result.format).toBe("heif");
      expect(Math.max(variant(result, "display").width, variant(result, "display").height)).toBe(1600);
      for (const v of result.variants) await expectNoMetadata(v.path, ["Apple", "iPhone"]);
    }
  });

  test("an AVIF (AV1 in HEIF, decodable by sharp's libheif) is converted, its EXIF dropped", async () => {
    const file = path.join(root, "camera.avif");
    await sharp(fixture("exif_jpeg/gps_nikon_coolpix_p6000.jpg")).keepExif().avif({ quality: 60 }).toFile(file);
    const before = await sharp(file).metadata();
    expect(before.format).toBe("heif");
    expect(before.compression).toBe("av1");

    const { result, dir } = await run(file);
    expect(result).toMatchObject({ format: "heif", width: 640, height: 480, animated: false });
    await expectVariantFiles(result, dir);
    for (const v of result.variants) await expectNoMetadata(v.path, ["NIKON", "COOLPIX"]);
    const original = await signature(fixture("exif_jpeg/gps_nikon_coolpix_p6000.jpg"));
    expect(difference(original, await signature(variant(result, "display").path))).toBeLessThan(6);
  });
});

describe("refusals", () => {
  test("the 65536×65536 pixel bomb is refused from its header, at once", async () => {
    const { error, dir, ms } = await refusal(fixture("hostile_images/pixel_bomb_65536x65536.png"));
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("ImageProcessingError");
    expect(error.reason).toBe("pixel_limit");
    expect(error.permanent).toBe(true);
    expect(error.message).toContain("65536×65536");
    expect(ms).toBeLessThan(2000);
    expect(filesIn(dir)).toEqual([]);
  });

  test("the pixel limit is an option: an ordinary 2.2-megapixel photo is refused under a 2-megapixel limit", async () => {
    const { error, dir } = await refusal(fixture("exif_jpeg/orientation_1.jpg"), { limitInputPixels: 2_000_000 });
    expect(error.reason).toBe("pixel_limit");
    expect(error.message).toContain("1800×1200");
    expect(filesIn(dir)).toEqual([]);
  });

  test.each([
    ["hostile_images/truncated_10000b.jpg", "a JPEG cut off after 10000 bytes"],
    ["hostile_images/polyglot_gif_php.gif", "a GIF header followed by PHP"],
    ["hostile_images/empty_zero_bytes.jpg", "an empty file"],
  ])("%s (%s) is refused as corrupt_image, quickly, leaving no files", async (name) => {
    const { error, dir, ms } = await refusal(fixture(name));
    expect(error.reason).toBe("corrupt_image");
    expect(error.permanent).toBe(true);
    expect(error.message.length).toBeGreaterThan(10);
    expect(error.message).not.toContain(FIXTURES);
    expect(ms).toBeLessThan(5000);
    expect(filesIn(dir)).toEqual([]);
  });

  test("a damaged image leaves an existing output directory as it was", async () => {
    const dir = outputDir();
    await fs.promises.mkdir(dir);
    await expect(processImage({ path: fixture("hostile_images/truncated_10000b.jpg") }, dir)).rejects.toBeInstanceOf(ImageProcessingError);
    expect(filesIn(dir)).toEqual([]);
  });

  test("a file that is not an image is refused as unsupported_format", async () => {
    const file = path.join(root, "notes.jpg");
    await fs.promises.writeFile(file, "these are not the pixels you are looking for\n".repeat(20));
    const { error, dir } = await refusal(file);
    expect(error.reason).toBe("unsupported_format");
    expect(filesIn(dir)).toEqual([]);
  });

  test("an SVG is refused as unsupported_format although libvips could render it", async () => {
    const file = path.join(root, "drawing.svg");
    await fs.promises.writeFile(file, '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="red"/></svg>');
    expect((await sharp(file).metadata()).format).toBe("svg");
    const { error, dir } = await refusal(file);
    expect(error.reason).toBe("unsupported_format");
    expect(error.message).toContain("SVG");
    expect(filesIn(dir)).toEqual([]);
  });

  test("a missing input is not the image's fault: a plain error the worker may retry", async () => {
    const error: unknown = await processImage({ path: path.join(root, "gone.jpg") }, outputDir()).catch((caught: unknown) => caught);
    // (Node's own errors come from another realm under Jest, so no instanceof Error here.)
    expect(error).not.toBeInstanceOf(ImageProcessingError);
    expect(error).toHaveProperty("code", "ENOENT");
  });

  test("a failure while writing removes the variants already written", async () => {
    const dir = outputDir();
    // The last file cannot be written: its name is taken by a directory.
    await fs.promises.mkdir(path.join(dir, "display-jpeg.jpg"), { recursive: true });
    const error: unknown = await processImage({ path: fixture("image_formats/jpeg_progressive_nikon.jpeg") }, dir).catch((caught: unknown) => caught);
    expect(error).not.toBeInstanceOf(ImageProcessingError);
    expect(error).toHaveProperty("code", "EISDIR");
    expect(filesIn(dir)).toEqual(["display-jpeg.jpg"]);
    expect(fs.statSync(path.join(dir, "display-jpeg.jpg")).isDirectory()).toBe(true);
  });
});

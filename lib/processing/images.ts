/**
 * Image processing with sharp: an original on local disk becomes web-ready variant files in a
 * directory (the worker uploads them), plus the numbers the media row records.
 *
 * - The header is read first and checked against the pixel and frame limits before any pixel is
 *   decoded (a 65536×65536 PNG is refused in milliseconds).
 * - EXIF orientation is applied, then every piece of metadata is dropped (EXIF with GPS, XMP,
 *   IPTC, ICC): sharp writes none unless asked to, and nothing here asks. Colours are converted
 *   to sRGB from the embedded profile (or from CMYK, 16-bit, greyscale).
 * - Alpha is kept in WebP and flattened onto white in the JPEG fallback.
 * - Animated GIF and WebP stay animated in WebP. libwebp merges consecutive identical frames into
 *   one longer frame, so the file may hold fewer frames than the source while showing the same
 *   animation for the same total duration. EXIF orientation is not applied to animations (sharp
 *   cannot rotate multi-page images; GIF has no orientation).
 * - Nothing is written until every variant has been encoded; a failure while writing removes what
 *   was written. So a refused or failed image leaves no files behind.
 *
 * Refusals that will never succeed on a retry are ImageProcessingError (permanent). Anything else
 * (missing input file, timeout, out of memory, a full disk) is rethrown as it is: the caller may
 * retry it.
 */
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import type { Metadata, Sharp, SharpOptions } from "sharp";
import type { ImageBoxes, ImageLimits, ImageVariantName, ImageVariantSpec, Size } from "./variant-plan";
import { checkImageHeader, DEFAULT_IMAGE_BOXES, DEFAULT_IMAGE_LIMITS, planImageVariants } from "./variant-plan";

export type ImageFailureReason = "pixel_limit" | "too_many_frames" | "unsupported_format" | "corrupt_image";

/** The image can never be processed: the media item fails with `reason`; retrying is pointless. */
export class ImageProcessingError extends Error {
  readonly permanent = true as const;

  constructor(
    readonly reason: ImageFailureReason,
    /** Readable by the owner; never contains file paths. */
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ImageProcessingError";
  }
}

/**
 * Decoders accepted for images, as sharp names them (`heif` covers HEIC and AVIF). Everything else
 * libvips could open (SVG, PDF, FITS, raw camera files, its own .v format...) is refused as
 * unsupported: less attack surface, and those are not photos people share.
 */
export const ACCEPTED_IMAGE_FORMATS: ReadonlySet<string> = new Set(["jpeg", "png", "webp", "gif", "heif", "tiff"]);

/** Formats whose frames are kept as an animation. */
const ANIMATED_FORMATS: ReadonlySet<string> = new Set(["gif", "webp"]);

export interface ImageProcessingOptions {
  /** Most pixels decoded for one image (width × height, times frames for animations). Default 100 000 000. */
  readonly limitInputPixels?: number;
  /** Most frames of an animated GIF or WebP. Default 300. */
  readonly maxFrames?: number;
  /**
   * How damaged pixel data may be: `truncated` (default) refuses cut-off files and accepts the minor
   * defects browsers show anyway; `error` also refuses any decode error.
   */
  readonly failOn?: "truncated" | "error";
  /** Each decoding pass gives up after this long (a plain Error, retryable). Default 120; 0: no limit. */
  readonly timeoutSeconds?: number;
  /** Variant boxes; the defaults are thumb 320, display 1600. */
  readonly boxes?: ImageBoxes;
  /** Called as work completes, 0-100. */
  readonly onProgress?: (percent: number) => void;
}

export interface ImageVariantFile {
  readonly name: ImageVariantName;
  /** Absolute or as given: `outputDir` joined with `<name>.<extension>`. */
  readonly path: string;
  readonly mime: "image/webp" | "image/jpeg";
  readonly extension: "webp" | "jpg";
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
  readonly animated: boolean;
}

export interface ProcessedImage {
  /** The decoder that read the source: jpeg, png, webp, gif, heif, tiff. */
  readonly format: string;
  /** After orientation; one frame's size for animations. */
  readonly width: number;
  readonly height: number;
  readonly animated: boolean;
  /** Frames in the source (1 for a still). */
  readonly frames: number;
  /** ThumbHash of the image, base64. */
  readonly placeholder: string;
  readonly variants: readonly ImageVariantFile[];
}

/**
 * Process-wide sharp settings, for a worker to call once at start (never called by this module).
 * `threadsPerImage`: libvips threads each image may use (sharp.concurrency). `cache: false` keeps
 * libvips from holding decoded images and open files between jobs, which only helps when the same
 * file is read again.
 */
export function configureSharp(settings: { readonly threadsPerImage?: number; readonly cache?: boolean }): void {
  if (settings.threadsPerImage !== undefined) sharp.concurrency(settings.threadsPerImage);
  if (settings.cache !== undefined) sharp.cache(settings.cache);
}

interface Encoded {
  readonly spec: ImageVariantSpec;
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
}

/** Makes the variants of the image at `input.path` in `outputDir` (created if missing; files there of the same names are replaced). */
export async function processImage(
  input: { readonly path: string },
  outputDir: string,
  options: ImageProcessingOptions = {},
): Promise<ProcessedImage> {
  const limits: ImageLimits = {
    limitInputPixels: positiveInteger(options.limitInputPixels ?? DEFAULT_IMAGE_LIMITS.limitInputPixels, "limitInputPixels"),
    maxFrames: positiveInteger(options.maxFrames ?? DEFAULT_IMAGE_LIMITS.maxFrames, "maxFrames"),
  };
  const failOn = options.failOn ?? "truncated";
  const timeoutSeconds = options.timeoutSeconds ?? 120;
  const progress = options.onProgress ?? (() => undefined);

  const stat = await fs.promises.stat(input.path);
  if (stat.size === 0) throw new ImageProcessingError("corrupt_image", "The file is empty.");

  // The header only: sharp's own limit is lifted here so that the refusal can say what the image is.
  const header = await decoding(null, () => sharp(input.path, { limitInputPixels: false, failOn }).metadata());
  if (!ACCEPTED_IMAGE_FORMATS.has(header.format)) {
    throw new ImageProcessingError("unsupported_format", `${formatLabel(header.format)} images are not supported.`);
  }
  const pages = header.pages ?? 1;
  const animated = ANIMATED_FORMATS.has(header.format) && pages > 1;
  const frames = animated ? pages : 1;
  // Read without `animated`, the header's size is one frame's.
  const refusal = checkImageHeader({ width: header.width, height: header.height, frames }, limits);
  if (refusal !== null) throw new ImageProcessingError(refusal.reason, refusal.message);

  const oriented: Size = animated ? { width: header.width, height: header.height } : header.autoOrient;
  const plan = planImageVariants({ ...oriented, animated }, options.boxes ?? DEFAULT_IMAGE_BOXES);
  const display = plan.variants.find((variant) => variant.name === "display") ?? plan.variants[0]!;

  const decode = (extra: SharpOptions) => {
    const image = sharp(input.path, { limitInputPixels: limits.limitInputPixels, failOn, ...extra });
    return timeoutSeconds > 0 ? image.timeout({ seconds: timeoutSeconds }) : image;
  };

  // One decode of the (first) frame, oriented, in sRGB, at display size: the still variants and
  // the placeholder are made from it.
  const base = await decoding(header, () =>
    decode({ autoOrient: !animated })
      .resize(display.width, display.height, { fit: "fill" })
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true }),
  );
  if (base.info.width !== display.width || base.info.height !== display.height) {
    throw new Error(`decoded ${base.info.width}×${base.info.height}, planned ${display.width}×${display.height}`);
  }
  progress(40);
  const fromBase = () =>
    sharp(base.data, { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } });

  const encoded: Encoded[] = [];
  for (const spec of plan.variants) {
    let image: Sharp;
    if (spec.animated) {
      image = decode({ animated: true }).resize(spec.width, spec.height, { fit: "fill" }).toColourspace("srgb");
    } else {
      image = fromBase();
      if (spec.width !== base.info.width || spec.height !== base.info.height) image = image.resize(spec.width, spec.height, { fit: "fill" });
    }
    if (spec.flatten !== null) image = image.flatten({ background: spec.flatten });
    image =
      spec.format === "webp"
        ? image.webp({ quality: spec.quality, effort: 4 })
        : image.jpeg({ quality: spec.quality, progressive: true, mozjpeg: true });
    const output = await decoding(header, () => image.toBuffer({ resolveWithObject: true }));
    const height = spec.animated ? (output.info.pageHeight ?? output.info.height) : output.info.height;
    encoded.push({ spec, data: output.data, width: output.info.width, height });
    progress(40 + Math.round((50 * encoded.length) / plan.variants.length));
  }

  const small = await fromBase()
    .resize(plan.placeholder.width, plan.placeholder.height, { fit: "fill" })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const placeholder = Buffer.from(rgbaToThumbHash(small.info.width, small.info.height, small.data)).toString("base64");

  const variants = await writeAll(outputDir, encoded);
  progress(100);
  return { format: header.format, width: oriented.width, height: oriented.height, animated, frames, placeholder, variants };
}

/** Writes every variant, or none: on a failure the files already written are removed. */
async function writeAll(outputDir: string, encoded: readonly Encoded[]): Promise<ImageVariantFile[]> {
  const written: string[] = [];
  try {
    await fs.promises.mkdir(outputDir, { recursive: true });
    const files: ImageVariantFile[] = [];
    for (const { spec, data, width, height } of encoded) {
      const file = path.join(outputDir, `${spec.name}.${spec.extension}`);
      written.push(file);
      await fs.promises.writeFile(file, data);
      files.push({ name: spec.name, path: file, mime: spec.mime, extension: spec.extension, width, height, bytes: data.length, animated: spec.animated });
    }
    return files;
  } catch (error) {
    await Promise.all(written.map((file) => fs.promises.rm(file, { force: true }).catch(() => undefined)));
    throw error;
  }
}

/** Runs a sharp step, turning what the image's content caused into an ImageProcessingError. */
async function decoding<T>(header: Metadata | null, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw classify(error, header);
  }
}

function classify(error: unknown, header: Metadata | null): unknown {
  if (!(error instanceof Error)) return error;
  const text = error.message;
  // Not the image's fault: let the caller retry.
  if (/input file is missing|timeout|out of memory|ENOMEM|ENOSPC|EMFILE/i.test(text)) return error;
  if (/exceeds pixel limit/i.test(text)) {
    return new ImageProcessingError("pixel_limit", "The image has more pixels than are accepted.", { cause: error });
  }
  if (/unsupported image format|not a known file format|unsupported.*(codec|compression|feature)|has not been built in|decoder plugin|no decoder/i.test(text)) {
    const codec = header?.compression !== undefined ? ` (${header.compression.toUpperCase()} compression)` : "";
    const what = header !== null ? `This ${formatLabel(header.format)} image${codec}` : "This file";
    return new ImageProcessingError("unsupported_format", `${what} cannot be decoded by this server.`, { cause: error });
  }
  return new ImageProcessingError("corrupt_image", "The image is damaged or incomplete and cannot be decoded.", { cause: error });
}

function formatLabel(format: string): string {
  return format === "heif" ? "HEIF/HEIC/AVIF" : format.toUpperCase();
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/*
 * ThumbHash encoder, ported line for line from the `thumbhash` package 0.1.1
 * (https://github.com/evanw/thumbhash, MIT licence, by Evan Wallace). The package ships
 * only as an ES module, which this CommonJS project's Jest cannot load (and Node 20 before 20.19
 * cannot require); the integration test checks this port byte for byte against the package.
 */

/** ThumbHash of an RGBA image (not premultiplied) of at most 100×100. */
export function rgbaToThumbHash(w: number, h: number, rgba: ArrayLike<number>): Uint8Array {
  if (w > 100 || h > 100) throw new Error(`${w}x${h} doesn't fit in 100x100`);
  if (rgba.length < w * h * 4) throw new Error(`${w}x${h} RGBA needs ${w * h * 4} values, got ${rgba.length}`);
  const { PI, round, max, cos, abs } = Math;

  // The average colour.
  let avgR = 0;
  let avgG = 0;
  let avgB = 0;
  let avgA = 0;
  for (let i = 0, j = 0; i < w * h; i++, j += 4) {
    const alpha = rgba[j + 3]! / 255;
    avgR += (alpha / 255) * rgba[j]!;
    avgG += (alpha / 255) * rgba[j + 1]!;
    avgB += (alpha / 255) * rgba[j + 2]!;
    avgA += alpha;
  }
  if (avgA) {
    avgR /= avgA;
    avgG /= avgA;
    avgB /= avgA;
  }

  const hasAlpha = avgA < w * h;
  const lLimit = hasAlpha ? 5 : 7; // fewer luminance bits when there is alpha
  const lx = max(1, round((lLimit * w) / max(w, h)));
  const ly = max(1, round((lLimit * h) / max(w, h)));
  const l: number[] = []; // luminance
  const p: number[] = []; // yellow - blue
  const q: number[] = []; // red - green
  const a: number[] = []; // alpha

  // RGBA to LPQA, composited atop the average colour.
  for (let i = 0, j = 0; i < w * h; i++, j += 4) {
    const alpha = rgba[j + 3]! / 255;
    const r = avgR * (1 - alpha) + (alpha / 255) * rgba[j]!;
    const g = avgG * (1 - alpha) + (alpha / 255) * rgba[j + 1]!;
    const b = avgB * (1 - alpha) + (alpha / 255) * rgba[j + 2]!;
    l[i] = (r + g + b) / 3;
    p[i] = (r + g) / 2 - b;
    q[i] = r - g;
    a[i] = alpha;
  }

  // DCT into the DC (constant) and normalised AC (varying) terms.
  const encodeChannel = (channel: number[], nx: number, ny: number): [number, number[], number] => {
    let dc = 0;
    let scale = 0;
    const ac: number[] = [];
    const fx: number[] = [];
    for (let cy = 0; cy < ny; cy++) {
      for (let cx = 0; cx * ny < nx * (ny - cy); cx++) {
        let f = 0;
        for (let x = 0; x < w; x++) fx[x] = cos((PI / w) * cx * (x + 0.5));
        for (let y = 0; y < h; y++) {
          const fy = cos((PI / h) * cy * (y + 0.5));
          for (let x = 0; x < w; x++) f += channel[x + y * w]! * fx[x]! * fy;
        }
        f /= w * h;
        if (cx || cy) {
          ac.push(f);
          scale = max(scale, abs(f));
        } else {
          dc = f;
        }
      }
    }
    if (scale) for (let i = 0; i < ac.length; i++) ac[i] = 0.5 + (0.5 / scale) * ac[i]!;
    return [dc, ac, scale];
  };
  const [lDc, lAc, lScale] = encodeChannel(l, max(3, lx), max(3, ly));
  const [pDc, pAc, pScale] = encodeChannel(p, 3, 3);
  const [qDc, qAc, qScale] = encodeChannel(q, 3, 3);
  const [aDc, aAc, aScale] = hasAlpha ? encodeChannel(a, 5, 5) : [0, [], 0];

  // The constants.
  const isLandscape = w > h;
  const header24 =
    round(63 * lDc) |
    (round(31.5 + 31.5 * pDc) << 6) |
    (round(31.5 + 31.5 * qDc) << 12) |
    (round(31 * lScale) << 18) |
    (Number(hasAlpha) << 23);
  const header16 = (isLandscape ? ly : lx) | (round(63 * pScale) << 3) | (round(63 * qScale) << 9) | (Number(isLandscape) << 15);
  const hash = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8];
  const acStart = hasAlpha ? 6 : 5;
  let acIndex = 0;
  if (hasAlpha) hash.push(round(15 * aDc) | (round(15 * aScale) << 4));

  // The varying factors, two per byte.
  for (const ac of hasAlpha ? [lAc, pAc, qAc, aAc] : [lAc, pAc, qAc]) {
    for (const f of ac) {
      const index = acStart + (acIndex >> 1);
      hash[index] = (hash[index] ?? 0) | (round(15 * f) << ((acIndex++ & 1) << 2));
    }
  }
  return new Uint8Array(hash);
}

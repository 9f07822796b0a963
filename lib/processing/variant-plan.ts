/**
 * What an image becomes, decided from its header alone: whether it may be decoded at all
 * (pixel and frame limits) and which variants to make at which sizes. Pure: no sharp, no I/O.
 *
 * Sizes are always taken after EXIF orientation (a portrait-stored photo with Orientation 6 is
 * planned as the landscape it shows), fit inside a box keeping the aspect ratio, and are never
 * larger than the source: a small image keeps its size. Images need no even dimensions.
 */

export interface Size {
  readonly width: number;
  readonly height: number;
}

/** The source as its header describes it, after orientation. For animations, one frame. */
export interface ImageSource extends Size {
  /** Several frames that are to stay animated (animated GIF or WebP). */
  readonly animated: boolean;
}

export type ImageVariantName = "thumb" | "display" | "display-jpeg";

export interface ImageVariantSpec extends Size {
  readonly name: ImageVariantName;
  readonly format: "webp" | "jpeg";
  readonly mime: "image/webp" | "image/jpeg";
  /** File and object-key extension. */
  readonly extension: "webp" | "jpg";
  /** Encoder quality, 1-100. */
  readonly quality: number;
  /** Keeps every frame (animated WebP); false: a still of the first frame. */
  readonly animated: boolean;
  /** Colour the alpha channel is flattened onto (formats without alpha); null keeps alpha. */
  readonly flatten: string | null;
}

export interface ImageVariantPlan {
  readonly source: ImageSource;
  readonly variants: readonly ImageVariantSpec[];
  /** Size of the RGBA image a ThumbHash placeholder is computed from (at most 100×100). */
  readonly placeholder: Size;
}

export interface ImageBoxes {
  /** `thumb` fits inside this square. */
  readonly thumbMax: number;
  /** `display` and `display-jpeg`: longest side at most this. */
  readonly displayMax: number;
  /** ThumbHash accepts at most 100×100. */
  readonly placeholderMax: number;
}

export const DEFAULT_IMAGE_BOXES: ImageBoxes = { thumbMax: 320, displayMax: 1600, placeholderMax: 100 };

/** The JPEG fallback has no alpha: transparent areas become white, never black. */
export const JPEG_BACKGROUND = "#ffffff";

const WEBP_QUALITY = 80;
const JPEG_QUALITY = 82;

/**
 * The largest size inside maxWidth×maxHeight with the source's aspect ratio, never larger than
 * the source (no upscaling), each side rounded and at least 1 pixel.
 */
export function fitInside(source: Size, maxWidth: number, maxHeight: number): Size {
  assertDimension(source.width, "width");
  assertDimension(source.height, "height");
  assertDimension(maxWidth, "box width");
  assertDimension(maxHeight, "box height");
  const scale = Math.min(1, maxWidth / source.width, maxHeight / source.height);
  if (scale === 1) return { width: source.width, height: source.height };
  return {
    width: clamp(Math.round(source.width * scale), 1, maxWidth),
    height: clamp(Math.round(source.height * scale), 1, maxHeight),
  };
}

/**
 * The variants of an image: `thumb` (inside thumbMax², WebP), `display` (longest side ≤ displayMax,
 * WebP) and `display-jpeg` (the same size as `display`, JPEG flattened onto white, for clients
 * without WebP). Animated sources keep their animation in both WebP variants; the JPEG is a still
 * of the first frame.
 */
export function planImageVariants(source: ImageSource, boxes: ImageBoxes = DEFAULT_IMAGE_BOXES): ImageVariantPlan {
  const display = fitInside(source, boxes.displayMax, boxes.displayMax);
  const thumb = fitInside(source, boxes.thumbMax, boxes.thumbMax);
  const webp = { format: "webp", mime: "image/webp", extension: "webp", quality: WEBP_QUALITY, animated: source.animated, flatten: null } as const;
  return {
    source: { width: source.width, height: source.height, animated: source.animated },
    variants: [
      { name: "thumb", ...thumb, ...webp },
      { name: "display", ...display, ...webp },
      {
        name: "display-jpeg",
        ...display,
        format: "jpeg",
        mime: "image/jpeg",
        extension: "jpg",
        quality: JPEG_QUALITY,
        animated: false,
        flatten: JPEG_BACKGROUND,
      },
    ],
    placeholder: fitInside(source, boxes.placeholderMax, boxes.placeholderMax),
  };
}

/** What the header says, before anything is decoded. */
export interface ImageHeader {
  /** One frame's size as stored. */
  readonly width: number;
  readonly height: number;
  /** Frames that would be decoded (1 for a still). */
  readonly frames: number;
}

export interface ImageLimits {
  /** Most pixels decoded for one image: width × height × frames. */
  readonly limitInputPixels: number;
  /** Most frames of an animation. */
  readonly maxFrames: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { limitInputPixels: 100_000_000, maxFrames: 300 };

export interface ImageRefusal {
  readonly reason: "pixel_limit" | "too_many_frames";
  readonly message: string;
}

/**
 * Null when the header is within the limits, otherwise why not. Counts every pixel that would be
 * decoded, so that an animation is bounded as a whole (sharp counts the same for all its pages).
 */
export function checkImageHeader(header: ImageHeader, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): ImageRefusal | null {
  const frame = header.width * header.height;
  if (frame > limits.limitInputPixels) {
    return {
      reason: "pixel_limit",
      message: `The image is ${header.width}×${header.height} (${megapixels(frame)} megapixels); at most ${megapixels(limits.limitInputPixels)} megapixels are accepted.`,
    };
  }
  if (header.frames > limits.maxFrames) {
    return { reason: "too_many_frames", message: `The animation has ${header.frames} frames; at most ${limits.maxFrames} are accepted.` };
  }
  const total = frame * header.frames;
  if (total > limits.limitInputPixels) {
    return {
      reason: "pixel_limit",
      message: `The animation has ${header.frames} frames of ${header.width}×${header.height} (${megapixels(total)} megapixels in all); at most ${megapixels(limits.limitInputPixels)} megapixels are accepted.`,
    };
  }
  return null;
}

function megapixels(pixels: number): string {
  const value = pixels / 1_000_000;
  return value >= 10 ? String(Math.round(value)) : String(Math.round(value * 10) / 10);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function assertDimension(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`image ${what} must be a positive integer, got ${value}`);
}

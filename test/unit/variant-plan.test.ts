import {
  checkImageHeader,
  DEFAULT_IMAGE_BOXES,
  DEFAULT_IMAGE_LIMITS,
  fitInside,
  JPEG_BACKGROUND,
  planImageVariants,
} from "../../lib/processing/variant-plan";
import type { ImageVariantPlan, ImageVariantSpec } from "../../lib/processing/variant-plan";

function variant(plan: ImageVariantPlan, name: ImageVariantSpec["name"]): ImageVariantSpec {
  const found = plan.variants.find((v) => v.name === name);
  if (found === undefined) throw new Error(`no ${name} variant`);
  return found;
}

function size(spec: { width: number; height: number }): string {
  return `${spec.width}x${spec.height}`;
}

describe("fitInside", () => {
  test("a landscape photo is scaled by its longest side, keeping the aspect ratio", () => {
    expect(fitInside({ width: 1800, height: 1200 }, 1600, 1600)).toEqual({ width: 1600, height: 1067 });
    expect(fitInside({ width: 1800, height: 1200 }, 320, 320)).toEqual({ width: 320, height: 213 });
  });

  test("a portrait photo is scaled by its height", () => {
    expect(fitInside({ width: 1200, height: 1800 }, 320, 320)).toEqual({ width: 213, height: 320 });
    expect(fitInside({ width: 3024, height: 4032 }, 1600, 1600)).toEqual({ width: 1200, height: 1600 });
  });

  test("never upscales: an image already inside the box keeps its size", () => {
    expect(fitInside({ width: 80, height: 80 }, 320, 320)).toEqual({ width: 80, height: 80 });
    expect(fitInside({ width: 200, height: 133 }, 1600, 1600)).toEqual({ width: 200, height: 133 });
    expect(fitInside({ width: 320, height: 320 }, 320, 320)).toEqual({ width: 320, height: 320 });
    expect(fitInside({ width: 1, height: 1 }, 320, 320)).toEqual({ width: 1, height: 1 });
  });

  test("odd sizes are fine for images (no rounding to even)", () => {
    expect(fitInside({ width: 641, height: 481 }, 320, 320)).toEqual({ width: 320, height: 240 });
    expect(fitInside({ width: 999, height: 333 }, 320, 320)).toEqual({ width: 320, height: 107 });
  });

  test("extreme aspect ratios keep at least one pixel and stay inside the box", () => {
    expect(fitInside({ width: 100_000, height: 10 }, 320, 320)).toEqual({ width: 320, height: 1 });
    expect(fitInside({ width: 3, height: 60_000 }, 1600, 1600)).toEqual({ width: 1, height: 1600 });
  });

  test("a non-square box is honoured on both sides", () => {
    expect(fitInside({ width: 1000, height: 1000 }, 400, 100)).toEqual({ width: 100, height: 100 });
    expect(fitInside({ width: 2000, height: 500 }, 400, 300)).toEqual({ width: 400, height: 100 });
  });

  test.each([
    [{ width: 0, height: 10 }, 320, 320],
    [{ width: 10, height: -1 }, 320, 320],
    [{ width: 10.5, height: 10 }, 320, 320],
    [{ width: Number.NaN, height: 10 }, 320, 320],
    [{ width: 10, height: 10 }, 0, 320],
  ])("rejects a size that is not a positive integer: %j in %i×%i", (source, w, h) => {
    expect(() => fitInside(source, w, h)).toThrow(RangeError);
  });

  test("the result always fits and never exceeds the source, over many sizes", () => {
    for (let width = 1; width <= 4000; width += 137) {
      for (let height = 1; height <= 4000; height += 211) {
        const fitted = fitInside({ width, height }, 320, 320);
        expect(fitted.width).toBeLessThanOrEqual(Math.min(320, width));
        expect(fitted.height).toBeLessThanOrEqual(Math.min(320, height));
        expect(Math.max(fitted.width, fitted.height)).toBe(Math.min(320, Math.max(width, height)));
      }
    }
  });
});

describe("planImageVariants", () => {
  test("a large still photo: thumb and display WebP, and a JPEG fallback at display size flattened onto white", () => {
    const plan = planImageVariants({ width: 4032, height: 3024, animated: false });
    expect(plan.variants.map((v) => [v.name, v.mime, size(v)])).toEqual([
      ["thumb", "image/webp", "320x240"],
      ["display", "image/webp", "1600x1200"],
      ["display-jpeg", "image/jpeg", "1600x1200"],
    ]);
    expect(variant(plan, "thumb")).toMatchObject({ format: "webp", extension: "webp", flatten: null, animated: false });
    expect(variant(plan, "display")).toMatchObject({ format: "webp", extension: "webp", flatten: null, animated: false });
    expect(variant(plan, "display-jpeg")).toMatchObject({ format: "jpeg", extension: "jpg", flatten: JPEG_BACKGROUND, animated: false });
    expect(JPEG_BACKGROUND).toBe("#ffffff");
    expect(plan.placeholder).toEqual({ width: 100, height: 75 });
  });

  test("sizes are planned from the oriented size: a rotated phone photo plans as the landscape it shows", () => {
    const plan = planImageVariants({ width: 1800, height: 1200, animated: false });
    expect(size(variant(plan, "thumb"))).toBe("320x213");
    expect(size(variant(plan, "display"))).toBe("1600x1067");
    expect(size(plan.placeholder)).toBe("100x67");
  });

  test("a small image is never upscaled: every variant keeps its size", () => {
    const plan = planImageVariants({ width: 200, height: 133, animated: false });
    for (const v of plan.variants) expect(size(v)).toBe("200x133");
    expect(size(plan.placeholder)).toBe("100x67");

    const tiny = planImageVariants({ width: 16, height: 9, animated: false });
    for (const v of tiny.variants) expect(size(v)).toBe("16x9");
    expect(size(tiny.placeholder)).toBe("16x9");
  });

  test("between the boxes: the thumb shrinks, the display keeps the source size", () => {
    const plan = planImageVariants({ width: 640, height: 480, animated: false });
    expect(size(variant(plan, "thumb"))).toBe("320x240");
    expect(size(variant(plan, "display"))).toBe("640x480");
    expect(size(variant(plan, "display-jpeg"))).toBe("640x480");
  });

  test("an animation stays animated in both WebP variants; the JPEG fallback is a still", () => {
    const plan = planImageVariants({ width: 80, height: 80, animated: true });
    expect(plan.variants.map((v) => [v.name, v.animated])).toEqual([
      ["thumb", true],
      ["display", true],
      ["display-jpeg", false],
    ]);
    for (const v of plan.variants) expect(size(v)).toBe("80x80");
  });

  test("a large animation is scaled per frame", () => {
    const plan = planImageVariants({ width: 1920, height: 1080, animated: true });
    expect(size(variant(plan, "thumb"))).toBe("320x180");
    expect(size(variant(plan, "display"))).toBe("1600x900");
  });

  test("the placeholder source is never larger than 100×100 (ThumbHash's limit)", () => {
    for (const [width, height] of [[4032, 3024], [3024, 4032], [100_000, 7], [7, 100_000], [101, 101]] as const) {
      const p = planImageVariants({ width, height, animated: false }).placeholder;
      expect(p.width).toBeLessThanOrEqual(100);
      expect(p.height).toBeLessThanOrEqual(100);
      expect(p.width).toBeGreaterThanOrEqual(1);
      expect(p.height).toBeGreaterThanOrEqual(1);
    }
  });

  test("other boxes can be given", () => {
    const plan = planImageVariants({ width: 4000, height: 2000, animated: false }, { thumbMax: 200, displayMax: 1000, placeholderMax: 32 });
    expect(size(variant(plan, "thumb"))).toBe("200x100");
    expect(size(variant(plan, "display"))).toBe("1000x500");
    expect(size(plan.placeholder)).toBe("32x16");
    expect(DEFAULT_IMAGE_BOXES).toEqual({ thumbMax: 320, displayMax: 1600, placeholderMax: 100 });
  });

  test("variant names and extensions are valid in object keys", () => {
    const plan = planImageVariants({ width: 10, height: 10, animated: false });
    for (const v of plan.variants) {
      expect(v.name).toMatch(/^[a-z0-9][a-z0-9-]{0,31}$/);
      expect(v.extension).toMatch(/^[a-z0-9]{1,5}$/);
      expect(v.quality).toBeGreaterThanOrEqual(1);
      expect(v.quality).toBeLessThanOrEqual(100);
    }
  });
});

describe("checkImageHeader", () => {
  test("the defaults are 100 megapixels and 300 frames", () => {
    expect(DEFAULT_IMAGE_LIMITS).toEqual({ limitInputPixels: 100_000_000, maxFrames: 300 });
  });

  test("an ordinary photo passes", () => {
    expect(checkImageHeader({ width: 4032, height: 3024, frames: 1 })).toBeNull();
  });

  test("exactly at the limit passes; one pixel more is refused", () => {
    const limits = { limitInputPixels: 10_000, maxFrames: 300 };
    expect(checkImageHeader({ width: 100, height: 100, frames: 1 }, limits)).toBeNull();
    expect(checkImageHeader({ width: 101, height: 100, frames: 1 }, limits)?.reason).toBe("pixel_limit");
  });

  test("a pixel bomb is refused by its declared size, with a readable message", () => {
    const refusal = checkImageHeader({ width: 65536, height: 65536, frames: 1 });
    expect(refusal).toEqual({ reason: "pixel_limit", message: expect.stringContaining("65536×65536") });
    expect(refusal?.message).toContain("4295 megapixels");
    expect(refusal?.message).toContain("100 megapixels");
  });

  test("an animation with too many frames is refused", () => {
    expect(checkImageHeader({ width: 80, height: 80, frames: 300 })).toBeNull();
    const refusal = checkImageHeader({ width: 80, height: 80, frames: 301 });
    expect(refusal?.reason).toBe("too_many_frames");
    expect(refusal?.message).toContain("301 frames");
  });

  test("an animation is bounded by all the pixels it would decode, not only one frame", () => {
    // 200 frames of 1000×1000 is 200 megapixels decoded.
    const refusal = checkImageHeader({ width: 1000, height: 1000, frames: 200 });
    expect(refusal?.reason).toBe("pixel_limit");
    expect(refusal?.message).toContain("200 frames");
    expect(checkImageHeader({ width: 1000, height: 1000, frames: 100 })).toBeNull();
  });

  test("a too-large single frame is reported as a pixel limit even when frames are also too many", () => {
    expect(checkImageHeader({ width: 20_000, height: 20_000, frames: 1000 })?.reason).toBe("pixel_limit");
  });
});

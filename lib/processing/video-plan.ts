/**
 * What a video becomes, decided from its probed numbers alone: pure, so it is tested without ffmpeg.
 *
 * Renditions are named after the usual ladder rungs, each a box oriented like the source (a portrait
 * phone video's "720p" is 720×1280):
 *
 * | rung   | landscape box | portrait box | H.264 peak rate |
 * |--------|---------------|--------------|-----------------|
 * | `720p` | 1280×720      | 720×1280     | 3000 kb/s       |
 * | `360p` | 640×360       | 360×640      | 900 kb/s        |
 *
 * Rules:
 * - Sizes are taken after rotation and after non-square pixels are made square, so they are what a
 *   viewer sees (ffmpeg applies the rotation; the output has square pixels and no rotation).
 * - A rung is made only when the source fills its box in at least one direction (scaling down or
 *   keeping the size, never up). The result keeps the source's aspect ratio within a pixel, and
 *   both sides are even (H.264 with 4:2:0 chroma needs that).
 * - A source that fills no rung (smaller than 640×360 both ways, e.g. 320×180) gets one rendition
 *   at its own size (rounded down to even), named after the smallest rung: `360p` means "360p or
 *   smaller".
 * - So a source between rungs (960×540) gets only `360p`: a `720p` that is really 540 lines tall
 *   would mislabel it. The original stays available to its owner.
 */

export interface FrameSize {
  readonly width: number;
  readonly height: number;
}

export type VideoRenditionName = "720p" | "360p";

export interface RenditionRung {
  readonly name: VideoRenditionName;
  /** The box's long and short sides; the box is turned to match the source's orientation. */
  readonly longSide: number;
  readonly shortSide: number;
  /** H.264 peak rate (`-maxrate`; the buffer is twice this). */
  readonly maxBitrateKbps: number;
}

/** Largest first. */
export const VIDEO_LADDER: readonly RenditionRung[] = [
  { name: "720p", longSide: 1280, shortSide: 720, maxBitrateKbps: 3000 },
  { name: "360p", longSide: 640, shortSide: 360, maxBitrateKbps: 900 },
];

export interface PlannedRendition extends FrameSize {
  readonly name: VideoRenditionName;
  readonly maxBitrateKbps: number;
}

/** Rotations ffmpeg applies by transposing (within a degree of a quarter turn) swap width and height. */
export function isQuarterTurn(rotationDegrees: number): boolean {
  if (!Number.isFinite(rotationDegrees)) return false;
  const normalized = ((rotationDegrees % 360) + 360) % 360;
  return Math.abs(normalized - 90) < 1 || Math.abs(normalized - 270) < 1;
}

/**
 * The size a viewer sees: stored width stretched by the sample aspect ratio (anamorphic video, e.g.
 * DV's 720×480 at 8:9), then turned when the rotation is a quarter turn.
 */
export function displaySize(stored: FrameSize, rotationDegrees = 0, sampleAspectRatio: number | null = null): FrameSize {
  const sar = sampleAspectRatio !== null && Number.isFinite(sampleAspectRatio) && sampleAspectRatio > 0 ? sampleAspectRatio : 1;
  const width = sar === 1 ? stored.width : Math.max(1, Math.round(stored.width * sar));
  return isQuarterTurn(rotationDegrees) ? { width: stored.height, height: width } : { width, height: stored.height };
}

/** The nearest even number, at least 2 and at most `limit` (which is rounded down to even first). */
function evenWithin(value: number, limit: number): number {
  const ceiling = Math.max(2, Math.floor(limit / 2) * 2);
  return Math.min(ceiling, Math.max(2, Math.round(value / 2) * 2));
}

/** The rung's box turned to match the source: portrait sources get a portrait box. */
function boxFor(source: FrameSize, rung: RenditionRung): FrameSize {
  return source.height > source.width
    ? { width: rung.shortSide, height: rung.longSide }
    : { width: rung.longSide, height: rung.shortSide };
}

/** The scale that fits `source` inside the rung's box (above 1 when the source is smaller both ways). */
export function scaleToRung(source: FrameSize, rung: RenditionRung): number {
  const box = boxFor(source, rung);
  return Math.min(box.width / source.width, box.height / source.height);
}

/**
 * The renditions for a source of this display size (see the rules at the top), largest first.
 * Throws a RangeError for sizes that are not positive whole numbers (probing refuses those first).
 */
export function planRenditions(source: FrameSize, ladder: readonly RenditionRung[] = VIDEO_LADDER): PlannedRendition[] {
  if (!Number.isInteger(source.width) || !Number.isInteger(source.height) || source.width < 1 || source.height < 1) {
    throw new RangeError(`Not a frame size: ${source.width}x${source.height}`);
  }
  if (ladder.length === 0) throw new RangeError("The rendition ladder is empty.");
  const rungs = [...ladder].sort((a, b) => b.longSide * b.shortSide - a.longSide * a.shortSide);
  const planned: PlannedRendition[] = [];
  for (const rung of rungs) {
    const scale = scaleToRung(source, rung);
    if (scale > 1) continue; // the source cannot fill this box: never upscale
    const box = boxFor(source, rung);
    planned.push({
      name: rung.name,
      width: evenWithin(source.width * scale, Math.min(box.width, source.width)),
      height: evenWithin(source.height * scale, Math.min(box.height, source.height)),
      maxBitrateKbps: rung.maxBitrateKbps,
    });
  }
  if (planned.length > 0) return planned;
  const smallest = rungs[rungs.length - 1]!;
  return [
    {
      name: smallest.name,
      width: evenWithin(source.width, source.width),
      height: evenWithin(source.height, source.height),
      maxBitrateKbps: smallest.maxBitrateKbps,
    },
  ];
}

/** Where the poster frame is taken: 10 % into the video (past a black first frame or a title fade-in). */
export function posterTimeSeconds(durationSeconds: number): number {
  if (!Number.isFinite(durationSeconds) || durationSeconds <= 0) return 0;
  return Math.round(durationSeconds * 0.1 * 1000) / 1000;
}

/** The frame rate to convert to, or null to keep the source's (at most `max`, default 60 fps). */
export function cappedFrameRate(sourceFps: number | null, max = 60): number | null {
  if (sourceFps === null || !Number.isFinite(sourceFps) || sourceFps <= 0) return null;
  return sourceFps > max + 0.01 ? max : null;
}

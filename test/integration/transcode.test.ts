/**
 * The video/audio library against real ffmpeg on real fixtures: the system's (Debian) binaries,
 * and the bundled npm builds for one audio job. Outputs are checked with ffprobe, not trusted.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import sharp from "sharp";
import type { FfmpegBinaries } from "../../lib/processing/ffmpeg-binaries";
import { FfmpegBinaryError, findOnPath, resolveFfmpegBinaries } from "../../lib/processing/ffmpeg-binaries";
import { probeMedia } from "../../lib/processing/probe";
import type { TranscodeProgress } from "../../lib/processing/transcode";
import { TranscodeError, transcodeAudio, transcodeVideo } from "../../lib/processing/transcode";

const run = promisify(execFile);
const FIXTURES = path.join(__dirname, "..", "fixtures");
const MP4_1080P60 = path.join(FIXTURES, "video/mp4_h264_aac51_1080p60.mp4");
const WEBM_320 = path.join(FIXTURES, "video/webm_vp9_bbb_10s.webm");
const BROKEN_MKV = path.join(FIXTURES, "video/broken_corrupt_header.mkv");
const MP3_COVER = path.join(FIXTURES, "audio/mp3_id3v24_cover.mp3");
const OGG = path.join(FIXTURES, "audio/ogg_vorbis.ogg");
const FLAC = path.join(FIXTURES, "audio/flac_stereo.flac");
const BROKEN_WAV = path.join(FIXTURES, "audio/broken_header.wav");

const FAST = { preset: "ultrafast", threads: 2 } as const;

let root: string;
let system: FfmpegBinaries;
let dirCount = 0;

/** A fresh, not yet existing directory for one job's outputs. */
function freshDir(label: string): string {
  dirCount += 1;
  return path.join(root, `${label}-${dirCount}`);
}

interface ProbedStream {
  codec_type: string;
  codec_name: string;
  profile?: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
  channels?: number;
  bit_rate?: string;
  side_data_list?: { side_data_type: string; rotation?: number }[];
  tags?: Record<string, string>;
}
interface Probed {
  streams: ProbedStream[];
  format: { duration?: string; format_name: string; tags?: Record<string, string> };
}

async function ffprobe(file: string): Promise<Probed> {
  const { stdout } = await run(system.ffprobe, ["-v", "error", "-show_format", "-show_streams", "-of", "json", file]);
  return JSON.parse(stdout) as Probed;
}

/** The top-level MP4 boxes in order (`ftyp`, `moov`, `mdat`, ...). */
function topLevelBoxes(file: string): string[] {
  const data = fs.readFileSync(file);
  const boxes: string[] = [];
  let offset = 0;
  while (offset + 8 <= data.length) {
    let size = data.readUInt32BE(offset);
    const type = data.toString("latin1", offset + 4, offset + 8);
    if (size === 1) size = Number(data.readBigUInt64BE(offset + 8));
    else if (size === 0) size = data.length - offset;
    boxes.push(type);
    if (size < 8) break;
    offset += size;
  }
  return boxes;
}

/** Live processes whose command line mentions `marker` (left-over ffmpeg after a kill). */
function processesMentioning(marker: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const status = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      if (/\) Z /.test(status)) continue; // a zombie is already dead
      if (fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(marker)) found.push(Number(entry));
    } catch {
      // it ended while we looked
    }
  }
  return found;
}

async function expectRefusal(promise: Promise<unknown>, reason: string, permanent: boolean): Promise<TranscodeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TranscodeError);
  const refusal = error as TranscodeError;
  expect({ reason: refusal.reason, permanent: refusal.permanent }).toEqual({ reason, permanent });
  expect(refusal.message).not.toContain(root);
  return refusal;
}

/** Greyscale 36×64 thumbnails of two images compared: mean absolute difference per pixel, 0-255. */
async function pictureDifference(a: Buffer, b: Buffer): Promise<number> {
  const small = (input: Buffer) => sharp(input).resize(36, 64, { fit: "fill" }).greyscale().raw().toBuffer();
  const [x, y] = await Promise.all([small(a), small(b)]);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.abs(x[i]! - y[i]!);
  return sum / x.length;
}

beforeAll(async () => {
  root = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-transcode-test-"));
  system = resolveFfmpegBinaries();
  expect(system.source).toEqual({ ffmpeg: "system", ffprobe: "system" });
});

afterAll(async () => {
  await fs.promises.rm(root, { recursive: true, force: true });
});

describe("ffmpeg binaries", () => {
  function fakeBinary(dir: string, name: string, mode: number): string {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, name);
    fs.writeFileSync(file, "#!/bin/sh\nexit 0\n");
    fs.chmodSync(file, mode);
    return file;
  }

  it("takes the system's when ffmpeg and ffprobe are on PATH", () => {
    const found = resolveFfmpegBinaries({ pathEnv: `/nonexistent${path.delimiter}/usr/bin`, bundled: () => ({}) });
    expect(found).toEqual({ ffmpeg: "/usr/bin/ffmpeg", ffprobe: "/usr/bin/ffprobe", source: { ffmpeg: "system", ffprobe: "system" } });
  });

  it("falls back to the bundled ones, each on its own, and they run", async () => {
    const onlyFfmpeg = path.join(root, "path-only-ffmpeg");
    fakeBinary(onlyFfmpeg, "ffmpeg", 0o755);
    const mixed = resolveFfmpegBinaries({ pathEnv: onlyFfmpeg });
    expect(mixed.source).toEqual({ ffmpeg: "system", ffprobe: "bundled" });
    expect(mixed.ffprobe).toContain(`${path.sep}@ffprobe-installer${path.sep}`);

    const bundled = resolveFfmpegBinaries({ pathEnv: "" });
    expect(bundled.source).toEqual({ ffmpeg: "bundled", ffprobe: "bundled" });
    expect(bundled.ffmpeg).toContain(`${path.sep}@ffmpeg-installer${path.sep}`);
    for (const file of [bundled.ffmpeg, bundled.ffprobe]) {
      expect(fs.statSync(file).mode & 0o100).toBe(0o100);
      const { stdout } = await run(file, ["-version"]);
      expect(stdout).toMatch(/version/);
    }
  });

  it("ignores empty and relative PATH entries (the current directory)", () => {
    const relative = path.relative(process.cwd(), path.join(root, "relative-bin"));
    fakeBinary(path.join(root, "relative-bin"), "ffmpeg", 0o755);
    expect(findOnPath("ffmpeg", `${relative}${path.delimiter}`)).toBeUndefined();
    expect(findOnPath("ffmpeg", path.join(root, "relative-bin"))).toBe(path.join(root, "relative-bin", "ffmpeg"));
  });

  it("gives a bundled binary its missing run bit", () => {
    const dir = path.join(root, "no-run-bit");
    const ffmpeg = fakeBinary(dir, "ffmpeg", 0o644);
    const ffprobe = fakeBinary(dir, "ffprobe", 0o600);
    const found = resolveFfmpegBinaries({ pathEnv: "", bundled: () => ({ ffmpeg, ffprobe }) });
    expect(found).toMatchObject({ ffmpeg, ffprobe });
    expect(fs.statSync(ffmpeg).mode & 0o777).toBe(0o755);
    expect(fs.statSync(ffprobe).mode & 0o777).toBe(0o700);
  });

  it("fails with a clear message when the run bit cannot be set or the package is missing", () => {
    const ffprobe = fakeBinary(path.join(root, "read-only"), "ffprobe", 0o644);
    const ffmpeg = fakeBinary(path.join(root, "read-only"), "ffmpeg", 0o755);
    const cannotChmod = () => {
      throw Object.assign(new Error("EROFS: read-only file system"), { code: "EROFS" });
    };
    const attempt = () => resolveFfmpegBinaries({ pathEnv: "", bundled: () => ({ ffmpeg, ffprobe }), makeExecutable: cannotChmod });
    expect(attempt).toThrow(FfmpegBinaryError);
    expect(attempt).toThrow(`${ffprobe} is not executable and its run bit could not be set (EROFS): run "chmod +x ${ffprobe}" or install ffmpeg on PATH.`);
    expect(() => resolveFfmpegBinaries({ pathEnv: "", bundled: () => ({ ffmpeg }) })).toThrow(/No ffprobe: .*@ffprobe-installer\/ffprobe/);
    expect(() => resolveFfmpegBinaries({ pathEnv: "", bundled: () => ({ ffmpeg, ffprobe: path.join(root, "gone") }) })).toThrow(/does not exist/);
  });
});

describe("probeMedia", () => {
  it("reads the 1080p60 MP4 with 5.1 audio", async () => {
    const probe = await probeMedia(MP4_1080P60, { formatHint: "video/mp4", binaries: system });
    expect(probe.video).toMatchObject({ codec: "h264", width: 1920, height: 1080, frameRate: 60, display: { width: 1920, height: 1080 } });
    expect(probe.audio).toMatchObject({ codec: "aac", channels: 6 });
    expect(probe.durationSeconds).toBeCloseTo(2.02, 1);
  });

  it("sees a rotate=90 copy as portrait", async () => {
    const rotated = path.join(root, "rotate-tag.mp4");
    await run(system.ffmpeg, ["-v", "error", "-i", MP4_1080P60, "-c", "copy", "-metadata:s:v", "rotate=90", rotated]);
    const probe = await probeMedia(rotated, { formatHint: "video/mp4", binaries: system });
    expect(Math.abs(probe.video!.rotation)).toBe(90);
    expect(probe.video!.display).toEqual({ width: 1080, height: 1920 });
  });

  it("finds the MP3's tags and cover picture, and no video", async () => {
    const probe = await probeMedia(MP3_COVER, { formatHint: "audio/mpeg", binaries: system });
    expect(probe.video).toBeNull();
    expect(probe.coverArt).toMatchObject({ codec: "mjpeg", width: 700, height: 700 });
    expect(probe.tags).toEqual({ title: "[herbal tea]", artist: "Artificial.Music", album: "Grocery List" });
  });

  it.each([
    ["broken Matroska", BROKEN_MKV, "video/x-matroska"],
    ["broken WAV", BROKEN_WAV, "audio/vnd.wave"],
    ["WebM claimed to be MP4", WEBM_320, "video/mp4"],
  ])("refuses a %s quickly as unreadable", async (_label, file, formatHint) => {
    const started = Date.now();
    const error = await expectRefusal(probeMedia(file, { formatHint, binaries: system }), "unreadable", true);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error.detail).toBeTruthy();
    expect(error.detail).not.toContain(FIXTURES);
  });

  it("refuses a type it has no demuxer for without running anything", async () => {
    const commands: string[] = [];
    await expectRefusal(
      probeMedia(MP4_1080P60, { formatHint: "application/x-mpegurl", binaries: system, onCommand: (p) => commands.push(p) }),
      "unsupported_format",
      true,
    );
    expect(commands).toEqual([]);
  });

  it("takes only absolute paths", async () => {
    await expect(probeMedia("test/fixtures/video/webm_vp9_bbb_10s.webm", { formatHint: "video/webm", binaries: system })).rejects.toThrow(TypeError);
  });
});

describe("hostile playlists", () => {
  let server: net.Server;
  let port: number;
  let connections = 0;
  let secret: string;
  let playlist: string;
  let control: string;
  let concat: string;

  beforeAll(async () => {
    server = net.createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
    // A local file the playlist points at: a video nobody uploaded (another user's, say).
    secret = path.join(root, "someone-elses.ts");
    await run(system.ffmpeg, ["-v", "error", "-i", WEBM_320, "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts", secret]);
    // Only the local file: some ffmpeg builds refuse a whole playlist naming /etc/passwd up front.
    control = path.join(root, "control.m3u8");
    fs.writeFileSync(control, ["#EXTM3U", "#EXT-X-TARGETDURATION:10", "#EXTINF:10.0,", secret, "#EXT-X-ENDLIST", ""].join("\n"));
    playlist = path.join(root, "hostile.m3u8");
    fs.writeFileSync(
      playlist,
      [
        "#EXTM3U",
        "#EXT-X-TARGETDURATION:10",
        "#EXTINF:10.0,",
        secret,
        "#EXTINF:10.0,",
        `http://127.0.0.1:${port}/segment.ts`,
        "#EXTINF:10.0,",
        "file:///etc/passwd",
        "#EXT-X-ENDLIST",
        "",
      ].join("\n"),
    );
    concat = path.join(root, "hostile.ffconcat");
    fs.writeFileSync(concat, `ffconcat version 1.0\nfile ${secret}\nfile /etc/passwd\nfile http://127.0.0.1:${port}/x.ts\n`);
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("control: ffprobe left to guess the format follows the playlist to the local file", async () => {
    const { stdout } = await run(system.ffprobe, ["-v", "quiet", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path.basename(control)], {
      cwd: root,
    }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }));
    expect(stdout).toContain("h264"); // the secret's stream: it was read
  });

  it.each(["video/mp4", "video/webm", "video/x-matroska", "audio/mpeg", "audio/ogg", "audio/x-flac", "audio/vnd.wave", "audio/aac"])(
    "with the demuxer forced for %s, the playlist and the concat script are refused unread",
    async (formatHint) => {
      for (const file of [control, playlist, concat]) {
        const started = Date.now();
        const refusal = await probeMedia(file, { formatHint, binaries: system }).then(
          (probe) => probe,
          (e: unknown) => e,
        );
        if (refusal instanceof TranscodeError) {
          expect(refusal.reason).toBe("unreadable");
        } else {
          // A lenient demuxer may "find" something in text; it must not be the secret's H.264, nor usable.
          const probe = refusal as Awaited<ReturnType<typeof probeMedia>>;
          expect(probe.video?.codec).not.toBe("h264");
        }
        expect(Date.now() - started).toBeLessThan(5000);
      }
    },
  );

  it("transcoding refuses them too and leaves nothing behind", async () => {
    const workDir = freshDir("hostile");
    await expectRefusal(transcodeVideo(control, workDir, { ...FAST, formatHint: "video/mp4", binaries: system }), "unreadable", true);
    await expectRefusal(transcodeVideo(playlist, workDir, { ...FAST, formatHint: "video/webm", binaries: system }), "unreadable", true);
    await expectRefusal(transcodeAudio(concat, workDir, { formatHint: "audio/mpeg", binaries: system }), "unreadable", true);
    await expectRefusal(
      transcodeVideo(playlist, workDir, { ...FAST, formatHint: "application/vnd.apple.mpegurl", binaries: system }),
      "unsupported_format",
      true,
    );
    expect(fs.existsSync(workDir)).toBe(false);
  });

  it("never reached the network", () => {
    expect(connections).toBe(0);
  });
});

describe("transcodeVideo", () => {
  let landscape: Awaited<ReturnType<typeof transcodeVideo>>;
  let landscapeDir: string;
  const progress: TranscodeProgress[] = [];

  beforeAll(async () => {
    landscapeDir = freshDir("landscape");
    landscape = await transcodeVideo(MP4_1080P60, landscapeDir, {
      ...FAST,
      formatHint: "video/mp4",
      binaries: system,
      progressIntervalMs: 0,
      onProgress: (p) => progress.push(p),
    });
  });

  it("records duration and size, and makes 720p and 360p", () => {
    expect(landscape.durationSeconds).toBeCloseTo(2.02, 1);
    expect({ width: landscape.width, height: landscape.height, hasAudio: landscape.hasAudio }).toEqual({ width: 1920, height: 1080, hasAudio: true });
    expect(landscape.variants.map((v) => [v.name, v.width, v.height, v.mime])).toEqual([
      ["720p", 1280, 720, "video/mp4"],
      ["360p", 640, 360, "video/mp4"],
    ]);
    for (const v of landscape.variants) {
      expect(v.path).toBe(path.join(landscapeDir, `${v.name}.mp4`));
      expect(v.bytes).toBe(fs.statSync(v.path).size);
    }
  });

  it("writes H.264 yuv420p with stereo AAC (from 5.1), moov before mdat, no metadata", async () => {
    for (const variant of landscape.variants) {
      const probed = await ffprobe(variant.path);
      const video = probed.streams.filter((s) => s.codec_type === "video");
      const audio = probed.streams.filter((s) => s.codec_type === "audio");
      expect(video).toHaveLength(1);
      expect(audio).toHaveLength(1);
      expect(video[0]).toMatchObject({ codec_name: "h264", pix_fmt: "yuv420p", width: variant.width, height: variant.height });
      expect(video[0]!.width! % 2 + video[0]!.height! % 2).toBe(0);
      expect(audio[0]).toMatchObject({ codec_name: "aac", channels: 2 });
      expect(Number(probed.format.duration)).toBeCloseTo(2, 0);
      const boxes = topLevelBoxes(variant.path);
      expect(boxes.indexOf("moov")).toBeGreaterThanOrEqual(0);
      expect(boxes.indexOf("moov")).toBeLessThan(boxes.indexOf("mdat"));
      // The fixture's comment tag (Big Buck Bunny's credits) is not carried over.
      expect(Object.keys(probed.format.tags ?? {}).filter((k) => !["major_brand", "minor_version", "compatible_brands", "encoder"].includes(k))).toEqual([]);
    }
  });

  it("takes a WebP poster 10 % in, at the 720p size", async () => {
    expect(landscape.poster).toMatchObject({ path: path.join(landscapeDir, "poster.webp"), mime: "image/webp", width: 1280, height: 720 });
    expect(landscape.poster.atSeconds).toBeCloseTo(0.2, 1);
    const bytes = fs.readFileSync(landscape.poster.path);
    expect(bytes.toString("latin1", 0, 4)).toBe("RIFF");
    expect(bytes.toString("latin1", 8, 12)).toBe("WEBP");
    expect(await sharp(bytes).metadata()).toMatchObject({ format: "webp", width: 1280, height: 720 });
  });

  it("reports progress that only rises and ends at 100", () => {
    expect(progress.length).toBeGreaterThanOrEqual(3);
    const percents = progress.map((p) => p.percent);
    expect([...percents].sort((a, b) => a - b)).toEqual(percents);
    expect(new Set(percents).size).toBe(percents.length);
    expect(progress.at(-1)).toEqual({ stage: "done", percent: 100 });
    expect(progress.some((p) => p.stage === "transcode" && p.percent > 1 && p.percent < 90)).toBe(true);
    expect(percents.every((p) => Number.isInteger(p) && p >= 0 && p <= 100)).toBe(true);
  });

  it("leaves only the outputs in the directory (the scratch directory is gone)", () => {
    expect(fs.readdirSync(landscapeDir).sort()).toEqual(["360p.mp4", "720p.mp4", "poster.webp"]);
  });

  it("turns a phone video upright: post-rotation sizes, no rotation left, the picture really turned", async () => {
    // The fixture with the display matrix an iPhone writes for portrait video (90° clockwise).
    const data = Buffer.from(fs.readFileSync(MP4_1080P60));
    let patched = 0;
    for (let at = data.indexOf("tkhd"); at >= 0; at = data.indexOf("tkhd", at + 4)) {
      const matrix = at + 4 + 4 + (data[at + 4] === 1 ? 32 : 20) + 16;
      if (data.readUInt32BE(matrix + 36) === 0) continue; // not the video track (width 0)
      const height = data.readUInt32BE(matrix + 40) >>> 16;
      [0, 1 << 16, 0, -(1 << 16), 0, 0, height << 16, 0, 1 << 30].forEach((v, i) => data.writeInt32BE(v, matrix + i * 4));
      patched += 1;
    }
    expect(patched).toBe(1);
    const portraitInput = path.join(root, "iphone-portrait.mp4");
    fs.writeFileSync(portraitInput, data);

    const workDir = freshDir("portrait");
    const result = await transcodeVideo(portraitInput, workDir, { ...FAST, formatHint: "video/mp4", binaries: system });
    expect({ width: result.width, height: result.height }).toEqual({ width: 1080, height: 1920 });
    expect(result.variants.map((v) => [v.name, v.width, v.height])).toEqual([
      ["720p", 720, 1280],
      ["360p", 360, 640],
    ]);
    for (const variant of result.variants) {
      const video = (await ffprobe(variant.path)).streams.find((s) => s.codec_type === "video")!;
      expect({ width: video.width, height: video.height }).toEqual({ width: variant.width, height: variant.height });
      expect(video.side_data_list ?? []).not.toContainEqual(expect.objectContaining({ side_data_type: "Display Matrix" }));
      expect(video.tags?.rotate ?? "0").toBe("0");
    }
    expect(result.poster).toMatchObject({ width: 720, height: 1280 });

    // Same moment, same picture: the landscape poster turned clockwise looks like the portrait one.
    const upright = fs.readFileSync(result.poster.path);
    const landscapePoster = fs.readFileSync(landscape.poster.path);
    const clockwise = await pictureDifference(upright, await sharp(landscapePoster).rotate(90).toBuffer());
    const anticlockwise = await pictureDifference(upright, await sharp(landscapePoster).rotate(270).toBuffer());
    expect(clockwise).toBeLessThan(8);
    expect(anticlockwise).toBeGreaterThan(clockwise * 3);
  });

  it("gives a 320×180 WebM without audio one 360p rendition at its own size, without an audio track", async () => {
    const workDir = freshDir("small");
    const result = await transcodeVideo(WEBM_320, workDir, { ...FAST, formatHint: "video/webm", binaries: system });
    expect(result).toMatchObject({ durationSeconds: 10, width: 320, height: 180, hasAudio: false });
    expect(result.variants.map((v) => [v.name, v.width, v.height])).toEqual([["360p", 320, 180]]);
    const probed = await ffprobe(result.variants[0]!.path);
    expect(probed.streams.map((s) => [s.codec_type, s.codec_name, s.pix_fmt])).toEqual([["video", "h264", "yuv420p"]]);
    expect(Number(probed.format.duration)).toBeCloseTo(10, 0);
    expect(result.poster).toMatchObject({ width: 320, height: 180, atSeconds: 1 });
    expect(fs.readdirSync(workDir).sort()).toEqual(["360p.mp4", "poster.webp"]);
  });

  it("takes the poster from the start when the video track ends before 10 % of the duration", async () => {
    // 0.5 s of video in a 20 s file (a long soundtrack): 10 % in (2 s) there is no frame.
    const videoOnly = path.join(root, "half-second.mp4");
    await run(system.ffmpeg, ["-v", "error", "-i", WEBM_320, "-frames:v", "15", "-c:v", "libx264", "-preset", "ultrafast", videoOnly]);
    const shortVideo = path.join(root, "short-video-long-audio.mp4");
    await run(system.ffmpeg, [
      "-v", "error",
      "-i", videoOnly,
      "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono",
      "-map", "0:v", "-map", "1:a", "-t", "20", "-c:v", "copy", "-c:a", "aac",
      shortVideo,
    ]);
    const workDir = freshDir("short-video");
    const result = await transcodeVideo(shortVideo, workDir, { ...FAST, formatHint: "video/mp4", binaries: system });
    expect(result.durationSeconds).toBeGreaterThan(15);
    expect(result.poster.atSeconds).toBe(0);
    expect(await sharp(result.poster.path).metadata()).toMatchObject({ format: "webp", width: 320, height: 180 });
  });

  it.each<[string, string, string, string, object]>([
    ["a broken header", BROKEN_MKV, "video/x-matroska", "unreadable", {}],
    ["an MP3 (its cover picture is not a video)", MP3_COVER, "audio/mpeg", "no_video_stream", {}],
    ["a video over the length limit", WEBM_320, "video/webm", "too_long", { maxDurationSeconds: 5 }],
  ])("refuses %s quickly, permanently, leaving nothing", async (_label, file, formatHint, reason, extra) => {
    const workDir = freshDir("refused");
    const started = Date.now();
    const refusal = await expectRefusal(transcodeVideo(file, workDir, { ...FAST, ...extra, formatHint, binaries: system }), reason, true);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(refusal.message).not.toContain(FIXTURES);
    expect(fs.existsSync(workDir) ? fs.readdirSync(workDir) : []).toEqual([]);
  });

  it("kills ffmpeg at the time limit, fails with `timeout` and removes the scratch directory", async () => {
    const workDir = freshDir("timeout");
    const commands: string[] = [];
    const started = Date.now();
    // veryslow makes the encode take far longer than the limit.
    await expectRefusal(
      transcodeVideo(MP4_1080P60, workDir, {
        formatHint: "video/mp4",
        binaries: system,
        preset: "veryslow",
        threads: 1,
        timeoutMs: 1500,
        onCommand: (c) => commands.push(c),
      }),
      "timeout",
      false,
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(4500);
    expect(commands.some((c) => c.startsWith(`${system.ffmpeg} `) && c.includes("720p.mp4"))).toBe(true);
    expect(fs.readdirSync(workDir)).toEqual([]);
    expect(processesMentioning(workDir)).toEqual([]);
  });

  it("stops when aborted, with `aborted`, leaving nothing", async () => {
    const workDir = freshDir("abort");
    const controller = new AbortController();
    const job = transcodeVideo(MP4_1080P60, workDir, {
      formatHint: "video/mp4",
      binaries: system,
      preset: "veryslow",
      threads: 1,
      signal: controller.signal,
      onCommand: (c) => {
        if (c.startsWith(`${system.ffmpeg} `)) setTimeout(() => controller.abort(), 300);
      },
    });
    await expectRefusal(job, "aborted", false);
    expect(fs.readdirSync(workDir)).toEqual([]);
    expect(processesMentioning(workDir)).toEqual([]);
  });

  it("fails `input_missing` (retryable) when the input file is not there", async () => {
    await expectRefusal(transcodeVideo(path.join(root, "nope.mp4"), freshDir("missing"), { formatHint: "video/mp4", binaries: system }), "input_missing", false);
  });
});

describe("transcodeAudio", () => {
  it("turns the MP3 into M4A/AAC, keeps title and artist, extracts the 700×700 cover, draws 800 peaks", async () => {
    const workDir = freshDir("mp3");
    const result = await transcodeAudio(MP3_COVER, workDir, { formatHint: "audio/mpeg", binaries: system });
    expect(result).toMatchObject({ title: "[herbal tea]", artist: "Artificial.Music", album: "Grocery List" });
    expect(result.durationSeconds).toBeCloseTo(1.07, 1);
    expect(result.variant).toMatchObject({ name: "audio", path: path.join(workDir, "audio.m4a"), mime: "audio/mp4", channels: 2, bitrateKbps: 128 });

    const probed = await ffprobe(result.variant.path);
    expect(probed.streams.map((s) => [s.codec_type, s.codec_name, s.channels])).toEqual([["audio", "aac", 2]]);
    // Title with a space survives whole (fluent-ffmpeg would split "title=[herbal tea]" in two).
    expect(probed.format.tags).toMatchObject({ title: "[herbal tea]", artist: "Artificial.Music", major_brand: "M4A " });
    expect(topLevelBoxes(result.variant.path).indexOf("moov")).toBeLessThan(topLevelBoxes(result.variant.path).indexOf("mdat"));

    expect(result.coverArt).toMatchObject({ path: path.join(workDir, "cover.jpg"), mime: "image/jpeg" });
    expect(await sharp(result.coverArt!.path).metadata()).toMatchObject({ format: "jpeg", width: 700, height: 700 });

    const waveform = JSON.parse(fs.readFileSync(result.waveform.path, "utf8")) as { points: number; peaks: number[] };
    expect(waveform.points).toBe(800);
    expect(waveform.peaks).toHaveLength(800);
    expect(waveform.peaks.every((p) => typeof p === "number" && p >= 0 && p <= 1)).toBe(true);
    expect(result.waveform.peaks).toEqual(waveform.peaks);
    expect(fs.readdirSync(workDir).sort()).toEqual(["audio.m4a", "cover.jpg", "waveform.json"]);
  });

  it("encodes Ogg Vorbis at about 128 kb/s, with a waveform that shows the sound", async () => {
    const workDir = freshDir("ogg");
    const progress: TranscodeProgress[] = [];
    const result = await transcodeAudio(OGG, workDir, { formatHint: "audio/ogg", binaries: system, progressIntervalMs: 0, onProgress: (p) => progress.push(p) });
    expect(result.durationSeconds).toBeCloseTo(2.9, 1);
    expect(result).toMatchObject({ title: null, artist: null, coverArt: null });
    const audio = (await ffprobe(result.variant.path)).streams[0]!;
    expect(audio).toMatchObject({ codec_name: "aac", channels: 2 });
    expect(Number(audio.bit_rate)).toBeGreaterThan(100_000);
    expect(Number(audio.bit_rate)).toBeLessThan(160_000);
    expect(Math.max(...result.waveform.peaks)).toBeGreaterThan(0.5);
    expect(result.waveform.peaks.filter((p) => p > 0.01).length).toBeGreaterThan(400);
    expect(progress.at(-1)).toEqual({ stage: "done", percent: 100 });
    expect(fs.readdirSync(workDir).sort()).toEqual(["audio.m4a", "waveform.json"]);
  });

  it("works with the bundled 2018 ffmpeg and 2023 ffprobe (FLAC)", async () => {
    const bundled = resolveFfmpegBinaries({ pathEnv: "" });
    const workDir = freshDir("flac-bundled");
    const commands: string[] = [];
    const result = await transcodeAudio(FLAC, workDir, { formatHint: "audio/x-flac", binaries: bundled, onCommand: (c) => commands.push(c) });
    expect(commands[0]!.startsWith(`${bundled.ffprobe} `)).toBe(true);
    expect(commands[1]!.startsWith(`${bundled.ffmpeg} `)).toBe(true);
    const audio = (await ffprobe(result.variant.path)).streams[0]!;
    expect(audio).toMatchObject({ codec_name: "aac", channels: 2 });
    expect(result.durationSeconds).toBeCloseTo(1.2, 1);
    expect(result.waveform.peaks).toHaveLength(800);
    expect(Math.max(...result.waveform.peaks)).toBeGreaterThan(0.2);
  });

  it("keeps a tag holding a path-like word as text: it never becomes an extra output", async () => {
    const tagged = path.join(root, "tagged.mp3");
    const planted = path.join(root, "planted.m4a");
    await run(system.ffmpeg, ["-v", "error", "-i", FLAC, "-metadata", `title=x ${planted}`, "-metadata", "artist=a b", "-c:a", "libmp3lame", tagged]);
    const workDir = freshDir("tagged");
    const result = await transcodeAudio(tagged, workDir, { formatHint: "audio/mpeg", binaries: system });
    expect(result.title).toBe(`x ${planted}`);
    expect((await ffprobe(result.variant.path)).format.tags).toMatchObject({ title: `x ${planted}`, artist: "a b" });
    expect(fs.existsSync(planted)).toBe(false);
  });

  it.each<[string, string, string, string]>([
    ["a broken WAV header", BROKEN_WAV, "audio/vnd.wave", "unreadable"],
    ["a video without sound", WEBM_320, "video/webm", "no_audio_stream"],
  ])("refuses %s quickly, leaving nothing", async (_label, file, formatHint, reason) => {
    const workDir = freshDir("refused-audio");
    const started = Date.now();
    await expectRefusal(transcodeAudio(file, workDir, { formatHint, binaries: system }), reason, true);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(fs.existsSync(workDir) ? fs.readdirSync(workDir) : []).toEqual([]);
  });
});

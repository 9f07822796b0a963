import {
  checkAudioProbe,
  checkVideoProbe,
  cleanTag,
  demuxerForMime,
  parseProbeOutput,
  parseRatio,
  scrubDetail,
  TranscodeError,
} from "../../lib/processing/probe";
import type { FrameSize } from "../../lib/processing/video-plan";
import {
  cappedFrameRate,
  displaySize,
  isQuarterTurn,
  planRenditions,
  posterTimeSeconds,
  VIDEO_LADDER,
} from "../../lib/processing/video-plan";
import { PeakAccumulator, waveformSampleRate } from "../../lib/processing/waveform";

const sizes = (plan: ReturnType<typeof planRenditions>): string[] => plan.map((r) => `${r.name} ${r.width}x${r.height}`);

describe("planRenditions", () => {
  it.each<[string, FrameSize, string[]]>([
    ["1080p landscape", { width: 1920, height: 1080 }, ["720p 1280x720", "360p 640x360"]],
    ["exactly 720p", { width: 1280, height: 720 }, ["720p 1280x720", "360p 640x360"]],
    ["4K", { width: 3840, height: 2160 }, ["720p 1280x720", "360p 640x360"]],
    ["portrait phone video", { width: 1080, height: 1920 }, ["720p 720x1280", "360p 360x640"]],
    ["cinema scope 2.39:1", { width: 1920, height: 804 }, ["720p 1280x536", "360p 640x268"]],
    ["4:3", { width: 1440, height: 1080 }, ["720p 960x720", "360p 480x360"]],
    ["square", { width: 1080, height: 1080 }, ["720p 720x720", "360p 360x360"]],
    ["between the rungs (qHD)", { width: 960, height: 540 }, ["360p 640x360"]],
    ["exactly 360p", { width: 640, height: 360 }, ["360p 640x360"]],
    ["smaller than every rung: source size", { width: 320, height: 180 }, ["360p 320x180"]],
    ["odd source smaller than every rung: rounded down to even", { width: 321, height: 181 }, ["360p 320x180"]],
    ["wider than 360p but shorter", { width: 700, height: 300 }, ["360p 640x274"]],
  ])("%s", (_label, source, expected) => {
    expect(sizes(planRenditions(source))).toEqual(expected);
  });

  it("never upscales, keeps the aspect ratio within a pixel and makes even sides, for many sizes", () => {
    const problems: string[] = [];
    let checked = 0;
    for (let width = 16; width <= 4000; width += 37) {
      for (let height = 16; height <= 4000; height += 53) {
        const plan = planRenditions({ width, height });
        if (plan.length === 0 || new Set(plan.map((r) => r.name)).size !== plan.length) problems.push(`${width}x${height}: ${sizes(plan)}`);
        for (const r of plan) {
          const rung = VIDEO_LADDER.find((x) => x.name === r.name)!;
          // Within rounding to even (±1 px on each side) of the source's aspect ratio.
          const aspectSlack = (width / height) * (2 / Math.min(r.width, r.height)) + 1e-9;
          if (
            r.width % 2 !== 0 ||
            r.height % 2 !== 0 ||
            r.width > width ||
            r.height > height ||
            Math.max(r.width, r.height) > rung.longSide ||
            Math.min(r.width, r.height) > rung.shortSide ||
            Math.abs(r.width / r.height - width / height) > aspectSlack
          ) {
            problems.push(`${width}x${height} → ${r.name} ${r.width}x${r.height}`);
          }
          checked++;
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(5000);
  });

  it("refuses sizes that are not positive whole numbers", () => {
    expect(() => planRenditions({ width: 0, height: 720 })).toThrow(RangeError);
    expect(() => planRenditions({ width: 12.5, height: 720 })).toThrow(RangeError);
  });
});

describe("displaySize", () => {
  it("swaps width and height for quarter turns either way", () => {
    expect(displaySize({ width: 1920, height: 1080 }, 90)).toEqual({ width: 1080, height: 1920 });
    expect(displaySize({ width: 1920, height: 1080 }, -90)).toEqual({ width: 1080, height: 1920 });
    expect(displaySize({ width: 1920, height: 1080 }, 270)).toEqual({ width: 1080, height: 1920 });
    expect(displaySize({ width: 1920, height: 1080 }, 180)).toEqual({ width: 1920, height: 1080 });
    expect(displaySize({ width: 1920, height: 1080 }, 0)).toEqual({ width: 1920, height: 1080 });
  });

  it("makes non-square pixels square before turning", () => {
    expect(displaySize({ width: 720, height: 480 }, 0, 8 / 9)).toEqual({ width: 640, height: 480 });
    expect(displaySize({ width: 1440, height: 1080 }, 90, 4 / 3)).toEqual({ width: 1080, height: 1920 });
  });

  it("treats only angles within a degree of a quarter turn as one", () => {
    expect(isQuarterTurn(89.5)).toBe(true);
    expect(isQuarterTurn(-270)).toBe(true);
    expect(isQuarterTurn(45)).toBe(false);
    expect(isQuarterTurn(Number.NaN)).toBe(false);
  });
});

describe("poster time and frame rate", () => {
  it("takes the poster 10 % in", () => {
    expect(posterTimeSeconds(2.022)).toBeCloseTo(0.202, 3);
    expect(posterTimeSeconds(600)).toBe(60);
    expect(posterTimeSeconds(0)).toBe(0);
  });

  it("caps only rates above the limit", () => {
    expect(cappedFrameRate(60)).toBeNull();
    expect(cappedFrameRate(59.94)).toBeNull();
    expect(cappedFrameRate(120)).toBe(60);
    expect(cappedFrameRate(60, 30)).toBe(30);
    expect(cappedFrameRate(null)).toBeNull();
  });
});

describe("demuxerForMime", () => {
  it.each([
    ["video/mp4", "mov"],
    ["video/quicktime", "mov"],
    ["video/webm", "webm"],
    ["video/x-matroska", "matroska"],
    ["audio/mpeg", "mp3"],
    ["audio/x-flac", "flac"],
    ["audio/ogg", "ogg"],
    ["audio/vnd.wave", "wav"],
    ["audio/mp4", "mov"],
    ["Video/MP4; codecs=avc1", "mov"],
  ])("%s → %s", (mime, demuxer) => {
    expect(demuxerForMime(mime)).toBe(demuxer);
  });

  it.each(["application/vnd.apple.mpegurl", "application/x-mpegurl", "text/plain", "video/mp2t", "image/png", "application/octet-stream", ""])(
    "has no demuxer for %j",
    (mime) => {
      expect(demuxerForMime(mime)).toBeUndefined();
    },
  );
});

/** A minimal ffprobe JSON document. */
function probeJson(streams: object[], format: object = { format_name: "mov,mp4,m4a,3gp,3g2,mj2", duration: "2.000000" }): unknown {
  return { streams, format };
}

const h264 = { index: 0, codec_type: "video", codec_name: "h264", width: 1920, height: 1080, avg_frame_rate: "60/1", sample_aspect_ratio: "1:1", pix_fmt: "yuv420p" };
const aac51 = { index: 1, codec_type: "audio", codec_name: "aac", channels: 6, sample_rate: "48000", channel_layout: "5.1" };

describe("parseProbeOutput", () => {
  it("reads streams, frame rate and duration", () => {
    const probe = parseProbeOutput(probeJson([h264, aac51]), "mov");
    expect(probe.video).toMatchObject({ index: 0, codec: "h264", width: 1920, height: 1080, frameRate: 60, rotation: 0, sampleAspectRatio: null });
    expect(probe.video!.display).toEqual({ width: 1920, height: 1080 });
    expect(probe.audio).toMatchObject({ index: 1, codec: "aac", channels: 6, sampleRate: 48000 });
    expect(probe.durationSeconds).toBe(2);
    expect(probe.coverArt).toBeNull();
  });

  it("reads the rotation from the display matrix, else from the old rotate tag", () => {
    const matrix = parseProbeOutput(probeJson([{ ...h264, side_data_list: [{ side_data_type: "Display Matrix", rotation: -90 }] }]), "mov");
    expect(matrix.video!.rotation).toBe(-90);
    expect(matrix.video!.display).toEqual({ width: 1080, height: 1920 });
    const tag = parseProbeOutput(probeJson([{ ...h264, tags: { rotate: "270" } }]), "mov");
    expect(tag.video!.display).toEqual({ width: 1080, height: 1920 });
  });

  it("does not take a cover picture for the video", () => {
    const probe = parseProbeOutput(
      probeJson(
        [
          { index: 0, codec_type: "audio", codec_name: "mp3", channels: 2, sample_rate: "44100" },
          { index: 1, codec_type: "video", codec_name: "mjpeg", width: 700, height: 700, disposition: { attached_pic: 1 } },
        ],
        { format_name: "mp3", duration: "1.071020", tags: { TITLE: "  [herbal tea]\u202e ", Artist: "Artificial.Music" } },
      ),
      "mp3",
    );
    expect(probe.video).toBeNull();
    expect(probe.coverArt).toEqual({ index: 1, codec: "mjpeg", width: 700, height: 700 });
    expect(probe.tags).toEqual({ title: "[herbal tea]", artist: "Artificial.Music", album: null });
  });

  it("finds tags on the audio stream (Ogg) and falls back to stream durations", () => {
    const probe = parseProbeOutput(
      probeJson([{ index: 0, codec_type: "audio", codec_name: "vorbis", channels: 2, duration: "2.9", tags: { ARTIST: "Someone" } }], {
        format_name: "ogg",
        duration: "N/A",
      }),
      "ogg",
    );
    expect(probe.tags.artist).toBe("Someone");
    expect(probe.durationSeconds).toBe(2.9);
  });

  it("survives garbage", () => {
    for (const junk of [null, 42, "x", [], { streams: "no" }, { streams: [null, 3, { codec_type: "video" }], format: [] }]) {
      const probe = parseProbeOutput(junk, "mov");
      expect(probe.durationSeconds).toBeNull();
      expect(() => checkVideoProbe(probe)).toThrow(TranscodeError);
    }
  });
});

function refusal(run: () => unknown): TranscodeError {
  try {
    run();
  } catch (error) {
    if (error instanceof TranscodeError) return error;
    throw error;
  }
  throw new Error("expected a TranscodeError");
}

describe("checkVideoProbe / checkAudioProbe", () => {
  const video = (streams: object[], format?: object) => parseProbeOutput(probeJson(streams, format), "mov");

  it("accepts a normal video, with or without audio", () => {
    expect(checkVideoProbe(video([h264, aac51])).audio?.channels).toBe(6);
    expect(checkVideoProbe(video([h264])).audio).toBeNull();
  });

  it.each<[string, () => unknown, string]>([
    ["no video stream", () => checkVideoProbe(video([aac51])), "no_video_stream"],
    ["no duration", () => checkVideoProbe(video([h264], { duration: "N/A" })), "unknown_duration"],
    ["over the limit", () => checkVideoProbe(video([h264], { duration: "1800.5" })), "too_long"],
    ["over a custom limit", () => checkVideoProbe(video([h264]), { maxDurationSeconds: 1 }), "too_long"],
    ["zero size", () => checkVideoProbe(video([{ ...h264, width: 0, height: 0 }])), "bad_dimensions"],
    ["tiny", () => checkVideoProbe(video([{ ...h264, width: 8, height: 8 }])), "bad_dimensions"],
    ["huge", () => checkVideoProbe(video([{ ...h264, width: 16384, height: 16384 }])), "bad_dimensions"],
    ["absurd pixel aspect", () => checkVideoProbe(video([{ ...h264, sample_aspect_ratio: "100:1" }])), "bad_dimensions"],
    ["no decoder", () => checkVideoProbe(video([{ ...h264, codec_name: undefined }])), "unsupported_codec"],
    ["no audio stream", () => checkAudioProbe(video([h264])), "no_audio_stream"],
    ["audio too long", () => checkAudioProbe(video([aac51], { duration: "3600" })), "too_long"],
  ])("refuses %s", (_label, run, reason) => {
    const error = refusal(run);
    expect(error.reason).toBe(reason);
    expect(error.permanent).toBe(true);
    expect(error.message).not.toMatch(/\//);
  });

  it("says how long in minutes", () => {
    expect(refusal(() => checkVideoProbe(video([h264], { duration: "2700" }))).message).toBe(
      "The video is 45 minutes long; the limit is 30 minutes.",
    );
  });

  it("marks only the retryable reasons as not permanent", () => {
    for (const reason of ["timeout", "aborted", "encode_failed", "input_missing", "binary_missing"] as const) {
      expect(new TranscodeError(reason, "x").permanent).toBe(false);
    }
    expect(new TranscodeError("unreadable", "x").permanent).toBe(true);
  });
});

describe("small helpers", () => {
  it("parses ratios", () => {
    expect(parseRatio("30000/1001")).toBeCloseTo(29.97, 2);
    expect(parseRatio("0/0")).toBeNull();
    expect(parseRatio("8:9", ":")).toBeCloseTo(0.889, 3);
    expect(parseRatio(undefined)).toBeNull();
  });

  it("cleans tags", () => {
    expect(cleanTag(" a\u0000b\nc ")).toBe("a b c");
    expect(cleanTag("   ")).toBeNull();
    expect(cleanTag(42)).toBeNull();
    expect(Array.from(cleanTag("é".repeat(500))!)).toHaveLength(200);
  });

  it("keeps paths out of ffmpeg's words", () => {
    const detail = scrubDetail("[matroska,webm @ 0x5621b9323240] EBML header parsing failed\nfile:/tmp/job/in.mkv: Invalid data", ["/tmp/job/in.mkv"]);
    expect(detail).toBe("EBML header parsing failed; file:<in.mkv>: Invalid data");
  });
});

describe("waveform", () => {
  it("gives exactly the number of points, the loudest absolute sample of each slice in 0..1", () => {
    const accumulator = new PeakAccumulator(8, 4);
    accumulator.add([0, 16384, -32768, 100, 0, 0, 32767, -8192]);
    expect(accumulator.result()).toEqual([0.5, 1, 0, 1]);
  });

  it("fills slices that got no sample of their own when there are fewer samples than points", () => {
    const accumulator = new PeakAccumulator(2, 5);
    accumulator.add([16384, -8192]);
    const peaks = accumulator.result();
    expect(peaks).toHaveLength(5);
    expect(peaks[0]).toBe(0.5);
    expect(peaks[4]).toBe(0.25);
    expect(peaks.every((p) => p >= 0 && p <= 1)).toBe(true);
  });

  it("ignores samples beyond the announced total and handles silence", () => {
    const accumulator = new PeakAccumulator(2, 2);
    accumulator.add([0, 0, 32767]);
    expect(accumulator.result()).toEqual([0, 0]);
    expect(new PeakAccumulator(0, 3).result()).toEqual([0, 0, 0]);
  });

  it("decodes short clips at a higher rate than long ones", () => {
    expect(waveformSampleRate(1)).toBe(48000);
    expect(waveformSampleRate(2.9)).toBe(17656);
    expect(waveformSampleRate(1800)).toBe(8000);
  });
});

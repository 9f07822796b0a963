/**
 * ffprobe, hardened, and the checks a file must pass before anything is decoded.
 *
 * The input is only ever a local file, named `file:<absolute path>` so no other protocol can be
 * picked from the name, read with `-protocol_whitelist file` and with the demuxer forced to the one
 * the sniffed MIME type names. So a text playlist (HLS `.m3u8`, an ffconcat script) uploaded as
 * "video" is parsed as MP4/WebM/... and refused, instead of being followed to `/etc/passwd`, another
 * user's upload or `http://169.254.169.254/`; and none of the forced demuxers opens other files.
 *
 * ffprobe is spawned directly rather than through fluent-ffmpeg's `ffprobe()`, which has no timeout
 * and cannot be killed. It is killed (SIGKILL) when its time is up.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import type { FfmpegBinaries } from "./ffmpeg-binaries";
import { ffmpegBinaries } from "./ffmpeg-binaries";
import type { FrameSize } from "./video-plan";
import { displaySize } from "./video-plan";

export type TranscodeFailureReason =
  /** Permanent: the file is not what its sniffed type says, or is damaged beyond reading. */
  | "unreadable"
  /** Permanent: a sniffed MIME type with no demuxer here (never passed to ffmpeg). */
  | "unsupported_format"
  /** Permanent: the stream exists but has no decoder. */
  | "unsupported_codec"
  | "no_video_stream"
  | "no_audio_stream"
  /** Permanent: neither the container nor the stream states a duration. */
  | "unknown_duration"
  | "too_long"
  /** Permanent: frame size zero, tiny or beyond the limit. */
  | "bad_dimensions"
  /** Retryable: the job's wall-clock limit was reached and ffmpeg/ffprobe was killed. */
  | "timeout"
  /** Retryable: the caller's AbortSignal fired (e.g. the worker is shutting down). */
  | "aborted"
  /** Retryable: ffmpeg failed after a successful probe (damage mid-file, a full disk, OOM...). */
  | "encode_failed"
  /** Retryable: the input file is missing (the download did not finish?). */
  | "input_missing"
  /** Retryable: no usable ffmpeg/ffprobe on this node. */
  | "binary_missing";

const PERMANENT: ReadonlySet<TranscodeFailureReason> = new Set<TranscodeFailureReason>([
  "unreadable",
  "unsupported_format",
  "unsupported_codec",
  "no_video_stream",
  "no_audio_stream",
  "unknown_duration",
  "too_long",
  "bad_dimensions",
]);

/**
 * Why a file was not transcoded. `permanent` failures will fail the same way on every retry (the
 * media item turns `failed` with `reason`); the others may succeed later. `message` is readable by
 * the owner and never holds a path; `detail` is ffmpeg's own words for the logs (paths replaced).
 */
export class TranscodeError extends Error {
  readonly permanent: boolean;

  constructor(
    readonly reason: TranscodeFailureReason,
    message: string,
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "TranscodeError";
    this.permanent = PERMANENT.has(reason);
  }
}

/**
 * The demuxer for each sniffed MIME type (the types the upload path accepts as audio and video).
 * `mov` is the mov,mp4,m4a,3gp demuxer; `webm` and `matroska` are the same demuxer.
 */
const DEMUXERS: ReadonlyMap<string, string> = new Map([
  ["video/mp4", "mov"],
  ["video/quicktime", "mov"],
  ["audio/mp4", "mov"],
  ["audio/x-m4a", "mov"],
  ["video/webm", "webm"],
  ["video/x-matroska", "matroska"],
  ["audio/mpeg", "mp3"],
  ["audio/aac", "aac"],
  ["audio/ogg", "ogg"],
  ["audio/opus", "ogg"],
  ["audio/x-flac", "flac"],
  ["audio/flac", "flac"],
  ["audio/vnd.wave", "wav"],
  ["audio/wav", "wav"],
  ["audio/x-wav", "wav"],
]);

/** The ffmpeg demuxer (`-f`) for a sniffed MIME type, or undefined when none is allowed. */
export function demuxerForMime(mime: string): string | undefined {
  return DEMUXERS.get(mime.split(";")[0]!.trim().toLowerCase());
}

export interface ProbedVideoStream {
  readonly index: number;
  readonly codec: string;
  /** As stored in the stream. */
  readonly width: number;
  readonly height: number;
  /** Degrees from the display matrix (or the old `rotate` tag), as ffprobe reports them; 0 when none. */
  readonly rotation: number;
  /** Pixel aspect ratio, null when unknown or square. */
  readonly sampleAspectRatio: number | null;
  readonly frameRate: number | null;
  readonly pixelFormat: string | null;
  /** What a viewer sees: rotation and pixel aspect applied. */
  readonly display: FrameSize;
}

export interface ProbedAudioStream {
  readonly index: number;
  readonly codec: string;
  readonly channels: number;
  readonly sampleRate: number | null;
  readonly channelLayout: string | null;
}

/** A picture stored as a stream (ID3 APIC, MP4 `covr`, Matroska attachment shown as attached_pic). */
export interface ProbedCoverArt {
  readonly index: number;
  readonly codec: string;
  readonly width: number | null;
  readonly height: number | null;
}

export interface MediaTags {
  readonly title: string | null;
  readonly artist: string | null;
  readonly album: string | null;
}

export interface ProbeResult {
  /** ffprobe's format name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`. */
  readonly formatName: string;
  readonly demuxer: string;
  /** The container's duration, else the longest of the chosen streams'; null when nobody says. */
  readonly durationSeconds: number | null;
  readonly bitRate: number | null;
  /** The first video stream that is not a cover picture. */
  readonly video: ProbedVideoStream | null;
  readonly audio: ProbedAudioStream | null;
  readonly coverArt: ProbedCoverArt | null;
  readonly tags: MediaTags;
  readonly streamCount: number;
}

export interface ProbeOptions {
  /** The MIME type sniffed from the file's first bytes (not the client's claim): picks the demuxer. */
  readonly formatHint: string;
  readonly binaries?: FfmpegBinaries;
  /** ffprobe is killed after this long (TranscodeError `timeout`). Default 30 s. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Called with the binary's path and the arguments before it runs (for debug logs). */
  readonly onCommand?: (program: string, args: readonly string[]) => void;
}

const MAX_PROBE_OUTPUT_BYTES = 4 * 1024 * 1024;
const MAX_STDERR_BYTES = 16 * 1024;

/** ffmpeg's words, without the paths it mentions and at most 600 characters, for logs. */
export function scrubDetail(text: string, paths: readonly string[]): string {
  let scrubbed = text;
  for (const p of paths) {
    if (p !== "") scrubbed = scrubbed.split(p).join(`<${path.basename(p)}>`);
  }
  scrubbed = scrubbed
    .split(/\r?\n/)
    .map((line) => line.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/, "").trim())
    .filter((line) => line !== "")
    .join("; ");
  return scrubbed.length > 600 ? `${scrubbed.slice(0, 597)}...` : scrubbed;
}

function kindOf(mime: string): string {
  return mime.startsWith("audio/") ? "audio" : "video";
}

/** Checks that a path is an absolute local path; the rest (is it a file?) is left to the callers' stat. */
export function assertLocalPath(inputPath: string): void {
  if (typeof inputPath !== "string" || !path.isAbsolute(inputPath) || inputPath.includes("\0")) {
    throw new TypeError(`Media input must be an absolute path to a local file, not ${JSON.stringify(inputPath)}.`);
  }
}

/** Runs ffprobe on a local file and parses what it says; throws TranscodeError. */
export async function probeMedia(inputPath: string, options: ProbeOptions): Promise<ProbeResult> {
  assertLocalPath(inputPath);
  const demuxer = demuxerForMime(options.formatHint);
  if (demuxer === undefined) {
    throw new TranscodeError("unsupported_format", `Files of type ${options.formatHint.slice(0, 100)} cannot be processed.`);
  }
  const binaries = options.binaries ?? ffmpegBinaries();
  const args = [
    "-v", "error",
    "-hide_banner",
    "-protocol_whitelist", "file",
    "-f", demuxer,
    "-show_format",
    "-show_streams",
    "-of", "json",
    `file:${inputPath}`,
  ];
  options.onCommand?.(binaries.ffprobe, args);
  const { stdout, stderr } = await runProbe(binaries.ffprobe, args, options.timeoutMs ?? 30_000, options.signal, inputPath, options.formatHint);
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (error) {
    throw new TranscodeError("unreadable", `The file could not be read as ${kindOf(options.formatHint)}.`, scrubDetail(stderr, [inputPath]), { cause: error });
  }
  return parseProbeOutput(parsed, demuxer);
}

interface ProbeOutput {
  readonly stdout: string;
  readonly stderr: string;
}

function runProbe(
  program: string,
  args: readonly string[],
  timeoutMs: number,
  signal: AbortSignal | undefined,
  inputPath: string,
  formatHint: string,
): Promise<ProbeOutput> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new TranscodeError("aborted", "Processing was cancelled."));
      return;
    }
    const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"], windowsHide: true });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    let stopped: TranscodeError | null = null;
    const stop = (why: TranscodeError): void => {
      if (stopped !== null) return;
      stopped = why;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(
      () => stop(new TranscodeError("timeout", `Reading the file took longer than ${Math.ceil(timeoutMs / 1000)} s and was stopped.`)),
      Math.max(1, timeoutMs),
    );
    const onAbort = (): void => stop(new TranscodeError("aborted", "Processing was cancelled."));
    signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_PROBE_OUTPUT_BYTES) {
        stop(new TranscodeError("unreadable", `The file could not be read as ${kindOf(formatHint)}.`, "ffprobe output too large (too many streams?)"));
      } else {
        out.push(chunk);
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      if (err.length < MAX_STDERR_BYTES) err += chunk;
    });
    const finish = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    child.on("error", (error: NodeJS.ErrnoException) => {
      finish();
      reject(
        error.code === "ENOENT" || error.code === "EACCES"
          ? new TranscodeError("binary_missing", "Media processing is not available right now.", `${program}: ${error.code}`, { cause: error })
          : error,
      );
    });
    child.on("close", (code, killedBy) => {
      finish();
      if (stopped !== null) {
        reject(stopped);
      } else if (code !== 0 || killedBy !== null) {
        reject(
          new TranscodeError(
            "unreadable",
            `The file could not be read as ${kindOf(formatHint)}: it is damaged or is not really ${formatHint.slice(0, 100)}.`,
            scrubDetail(err, [inputPath]),
          ),
        );
      } else {
        resolve({ stdout: Buffer.concat(out).toString("utf8"), stderr: err });
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Parsing (pure)

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function finiteNumber(value: unknown): number | null {
  const n = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
  return Number.isFinite(n) ? n : null;
}

function wholeNumber(value: unknown): number | null {
  const n = finiteNumber(value);
  return n !== null && Number.isInteger(n) ? n : null;
}

/** "30000/1001" → 29.97; "0/0", "N/A" → null. */
export function parseRatio(value: unknown, separator = "/"): number | null {
  if (typeof value !== "string") return null;
  const [a, b] = value.split(separator);
  const numerator = finiteNumber(a);
  const denominator = finiteNumber(b);
  if (numerator === null || denominator === null || numerator <= 0 || denominator <= 0) return null;
  return numerator / denominator;
}

const CONTROLS = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/** A tag value as shown to people: no control or bidi characters, trimmed, at most 200 code points. */
export function cleanTag(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const cleaned = Array.from(value.normalize("NFC").replace(CONTROLS, " ").trim()).slice(0, 200).join("").trim();
  return cleaned === "" ? null : cleaned;
}

function tagLookup(...sources: unknown[]): (name: string) => string | null {
  const maps = sources.filter(isObject).map((tags) => new Map(Object.entries(tags).map(([k, v]) => [k.toLowerCase(), v])));
  return (name) => {
    for (const map of maps) {
      const value = cleanTag(map.get(name));
      if (value !== null) return value;
    }
    return null;
  };
}

/** The rotation in degrees a stream declares: display matrix side data first, else the `rotate` tag. */
export function streamRotation(stream: Json): number {
  const sideData = Array.isArray(stream.side_data_list) ? stream.side_data_list : [];
  for (const entry of sideData) {
    if (isObject(entry) && entry.side_data_type === "Display Matrix") {
      const rotation = finiteNumber(entry.rotation);
      if (rotation !== null) return rotation;
    }
  }
  const tags = isObject(stream.tags) ? stream.tags : {};
  return finiteNumber(tags.rotate) ?? 0;
}

function isCoverPicture(stream: Json): boolean {
  return isObject(stream.disposition) && finiteNumber(stream.disposition.attached_pic) === 1;
}

function codecName(stream: Json): string {
  return typeof stream.codec_name === "string" && stream.codec_name !== "" ? stream.codec_name : "none";
}

/** Turns ffprobe's JSON (`-show_format -show_streams -of json`) into a ProbeResult. */
export function parseProbeOutput(output: unknown, demuxer: string): ProbeResult {
  const root = isObject(output) ? output : {};
  const format = isObject(root.format) ? root.format : {};
  const streams = (Array.isArray(root.streams) ? root.streams : []).filter(isObject);

  const videoStream = streams.find((s) => s.codec_type === "video" && !isCoverPicture(s));
  const audioStream = streams.find((s) => s.codec_type === "audio");
  const coverStream = streams.find((s) => s.codec_type === "video" && isCoverPicture(s));

  let video: ProbedVideoStream | null = null;
  if (videoStream !== undefined) {
    const width = wholeNumber(videoStream.width) ?? 0;
    const height = wholeNumber(videoStream.height) ?? 0;
    const rotation = streamRotation(videoStream);
    const sar = parseRatio(videoStream.sample_aspect_ratio, ":");
    const sampleAspectRatio = sar === null || Math.abs(sar - 1) < 1e-6 ? null : sar;
    video = {
      index: wholeNumber(videoStream.index) ?? 0,
      codec: codecName(videoStream),
      width,
      height,
      rotation,
      sampleAspectRatio,
      frameRate: parseRatio(videoStream.avg_frame_rate) ?? parseRatio(videoStream.r_frame_rate),
      pixelFormat: typeof videoStream.pix_fmt === "string" ? videoStream.pix_fmt : null,
      display: width > 0 && height > 0 ? displaySize({ width, height }, rotation, sampleAspectRatio) : { width, height },
    };
  }

  const audio: ProbedAudioStream | null =
    audioStream === undefined
      ? null
      : {
          index: wholeNumber(audioStream.index) ?? 0,
          codec: codecName(audioStream),
          channels: wholeNumber(audioStream.channels) ?? 0,
          sampleRate: wholeNumber(audioStream.sample_rate),
          channelLayout: typeof audioStream.channel_layout === "string" ? audioStream.channel_layout : null,
        };

  const coverArt: ProbedCoverArt | null =
    coverStream === undefined
      ? null
      : {
          index: wholeNumber(coverStream.index) ?? 0,
          codec: codecName(coverStream),
          width: wholeNumber(coverStream.width),
          height: wholeNumber(coverStream.height),
        };

  const streamDurations = [videoStream, audioStream]
    .map((s) => (s === undefined ? null : finiteNumber(s.duration)))
    .filter((d): d is number => d !== null && d > 0);
  const formatDuration = finiteNumber(format.duration);
  const durationSeconds =
    formatDuration !== null && formatDuration > 0 ? formatDuration : streamDurations.length > 0 ? Math.max(...streamDurations) : null;

  const tag = tagLookup(format.tags, audioStream?.tags, videoStream?.tags);
  return {
    formatName: typeof format.format_name === "string" ? format.format_name : demuxer,
    demuxer,
    durationSeconds,
    bitRate: finiteNumber(format.bit_rate),
    video,
    audio,
    coverArt,
    tags: { title: tag("title"), artist: tag("artist") ?? tag("album_artist"), album: tag("album") },
    streamCount: streams.length,
  };
}

// ---------------------------------------------------------------------------------------------
// Checks (pure)

export interface MediaLimits {
  /** Longest accepted media. Default 1800 s (30 minutes). */
  readonly maxDurationSeconds?: number;
  /** Longest accepted side of the stored frame. Default 8192. */
  readonly maxDimension?: number;
  /** Shortest accepted side. Default 16. */
  readonly minDimension?: number;
  /** Most pixels per frame. Default 8192 × 4320 (8K). */
  readonly maxPixels?: number;
}

export const DEFAULT_MEDIA_LIMITS: Required<MediaLimits> = {
  maxDurationSeconds: 1800,
  maxDimension: 8192,
  minDimension: 16,
  maxPixels: 8192 * 4320,
};

function formatMinutes(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} seconds`;
  return `${Math.round(seconds / 60)} minutes`;
}

function checkDuration(probe: ProbeResult, limits: Required<MediaLimits>, what: string): number {
  const duration = probe.durationSeconds;
  if (duration === null || !Number.isFinite(duration) || duration <= 0) {
    throw new TranscodeError("unknown_duration", `The ${what} does not say how long it is, so it cannot be processed.`);
  }
  if (duration > limits.maxDurationSeconds) {
    throw new TranscodeError(
      "too_long",
      `The ${what} is ${formatMinutes(duration)} long; the limit is ${formatMinutes(limits.maxDurationSeconds)}.`,
    );
  }
  return duration;
}

/** What transcoding a video relies on; throws TranscodeError when the probe shows it cannot be done. */
export function checkVideoProbe(
  probe: ProbeResult,
  limits: MediaLimits = {},
): { video: ProbedVideoStream; audio: ProbedAudioStream | null; durationSeconds: number } {
  const all = { ...DEFAULT_MEDIA_LIMITS, ...limits };
  const video = probe.video;
  if (video === null) throw new TranscodeError("no_video_stream", "The file has no video track.");
  if (video.codec === "none") throw new TranscodeError("unsupported_codec", "The video track's format is not supported.");
  const { width, height } = video;
  const sane = (size: FrameSize): boolean =>
    size.width >= all.minDimension &&
    size.height >= all.minDimension &&
    size.width <= all.maxDimension &&
    size.height <= all.maxDimension &&
    size.width * size.height <= all.maxPixels;
  if (!sane(video) || !sane(video.display)) {
    throw new TranscodeError("bad_dimensions", `The video's frame size (${width}×${height}) is not supported.`);
  }
  const durationSeconds = checkDuration(probe, all, "video");
  const audio = probe.audio !== null && probe.audio.codec !== "none" && probe.audio.channels > 0 ? probe.audio : null;
  return { video, audio, durationSeconds };
}

/** What transcoding audio relies on; throws TranscodeError when the probe shows it cannot be done. */
export function checkAudioProbe(probe: ProbeResult, limits: MediaLimits = {}): { audio: ProbedAudioStream; durationSeconds: number } {
  const all = { ...DEFAULT_MEDIA_LIMITS, ...limits };
  const audio = probe.audio;
  if (audio === null) throw new TranscodeError("no_audio_stream", "The file has no audio track.");
  if (audio.codec === "none" || audio.channels < 1) throw new TranscodeError("unsupported_codec", "The audio format is not supported.");
  const durationSeconds = checkDuration(probe, all, "recording");
  return { audio, durationSeconds };
}

/** What a caller may ask of a video or audio transcode, and how out-of-range numbers are brought into range. */
import type { FfmpegBinaries } from "./ffmpeg-binaries";
import type { MediaLimits } from "./probe";
import type { RenditionRung } from "./video-plan";

export type X264Preset = "ultrafast" | "superfast" | "veryfast" | "faster" | "fast" | "medium" | "slow" | "slower" | "veryslow";

export type TranscodeStage = "probe" | "transcode" | "poster" | "cover" | "waveform" | "done";

export interface TranscodeProgress {
  readonly stage: TranscodeStage;
  /** Whole percent of the job, 0-100, never going down; 100 comes once, at the end of a success. */
  readonly percent: number;
}

export interface TranscodeOptions extends MediaLimits {
  /** The MIME type sniffed from the content; picks the demuxer (`-f`). Required. */
  readonly formatHint: string;
  readonly binaries?: FfmpegBinaries;
  /** Threads for ffmpeg's decoders, filters and encoders. Default 2 (1-16). */
  readonly threads?: number;
  /** Wall-clock limit of the whole job. Default: 2 minutes plus 3× the probed duration (probing alone: 30 s). */
  readonly timeoutMs?: number;
  /** Stops the job (reason `aborted`), e.g. when the worker shuts down. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: TranscodeProgress) => void;
  /** Least time between two progress calls. Default 500 ms. */
  readonly progressIntervalMs?: number;
  /** Called with each ffmpeg/ffprobe command line (binary path first) as it starts (debug logs). */
  readonly onCommand?: (commandLine: string) => void;
}

export interface VideoTranscodeOptions extends TranscodeOptions {
  /** x264 speed/size trade-off. Default `veryfast`. */
  readonly preset?: X264Preset;
  /** x264 constant rate factor (quality; lower is better). Default 23. */
  readonly crf?: number;
  readonly audioBitrateKbps?: number;
  /** Frame rates above this are reduced to it. Default 60. */
  readonly maxFrameRate?: number;
  readonly ladder?: readonly RenditionRung[];
  /** libwebp quality of the poster, 0-100. Default 80. */
  readonly posterQuality?: number;
}

export interface AudioTranscodeOptions extends TranscodeOptions {
  /** AAC bit rate. Default 128 kb/s. */
  readonly bitrateKbps?: number;
  readonly waveformPoints?: number;
}

export function clampInteger(value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.round(value)));
}

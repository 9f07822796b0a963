/**
 * Video and audio transcoding with ffmpeg (through fluent-ffmpeg): a local original becomes
 * web-ready files in a directory the caller owns (the worker uploads them), plus the numbers the
 * media row records.
 *
 * Video → MP4 (H.264 High, yuv420p, `+faststart`; AAC-LC stereo 128 kb/s, 5.1 downmixed, or no
 * audio track when the source has none) at the sizes video-plan.ts picks, and a WebP poster taken
 * 10 % into the video at the largest rendition's size. ffmpeg's autorotation turns phone videos
 * upright; the outputs carry no rotation and no metadata (no GPS location, no device names).
 *
 * Audio → AAC-LC in M4A at 128 kb/s (stereo at most; mono stays mono), title and artist kept from
 * the tags (cleaned), 800 waveform peaks in 0..1 as JSON, and an embedded cover picture extracted
 * as it is stored (JPEG or PNG; other codecs are re-encoded to PNG) for the image worker. A cover
 * that cannot be extracted is skipped: the recording matters, not its picture.
 *
 * Hardening (see also probe.ts):
 * - the input is an absolute local path, given to ffmpeg as `file:<path>` with
 *   `-protocol_whitelist file` and the demuxer forced from the sniffed MIME type (`formatHint`);
 * - every job has a wall-clock limit (`timeoutMs`; default 2 minutes plus 3× the media's duration):
 *   ffmpeg/ffprobe are killed with SIGKILL and the job fails with reason `timeout`; an AbortSignal
 *   does the same with `aborted`;
 * - `-threads` (default 2) for decoders, filters and encoders; `-t` caps every output at the
 *   duration limit whatever the container claims;
 * - ffmpeg writes only into a scratch directory inside `workDir` (also its working directory); the
 *   finished files are moved into `workDir` at the end, and the scratch directory is removed on
 *   every path: success, refusal, failure, timeout, abort. A failed job leaves nothing in `workDir`.
 *
 * fluent-ffmpeg caveats handled here: a `progress` listener would make it run its own ffprobe on the
 * input without `-f` or the whitelist, so progress is read from `-progress pipe:2` on stderr instead;
 * `kill()` before the process has spawned does nothing, so a stop requested early is applied on
 * `start`; and `setFfmpegPath()` is process-wide, so every job of a process must use the same
 * binaries (ffmpegBinaries() decides once).
 */
import fs from "node:fs";
import path from "node:path";
import ffmpeg from "fluent-ffmpeg";
import type { FfmpegBinaries } from "./ffmpeg-binaries";
import { ffmpegBinaries } from "./ffmpeg-binaries";
import type { MediaLimits, ProbeResult } from "./probe";
import { assertLocalPath, checkAudioProbe, checkVideoProbe, DEFAULT_MEDIA_LIMITS, probeMedia, scrubDetail, TranscodeError } from "./probe";
import type { PlannedRendition, RenditionRung, VideoRenditionName } from "./video-plan";
import { cappedFrameRate, planRenditions, posterTimeSeconds } from "./video-plan";
import { peaksFromPcmFile, WAVEFORM_POINTS, waveformSampleRate, writeWaveformJson } from "./waveform";

export { TranscodeError } from "./probe";
export type { TranscodeFailureReason, ProbeResult, MediaLimits } from "./probe";

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

export interface VideoVariantFile {
  readonly name: VideoRenditionName;
  readonly path: string;
  readonly mime: "video/mp4";
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
}

export interface PosterFile {
  readonly path: string;
  readonly mime: "image/webp";
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
  /** Where in the video it was taken. */
  readonly atSeconds: number;
}

export interface TranscodedVideo {
  readonly durationSeconds: number;
  /** Of the source as a viewer sees it (after rotation). */
  readonly width: number;
  readonly height: number;
  readonly hasAudio: boolean;
  /** Largest first. */
  readonly variants: readonly VideoVariantFile[];
  readonly poster: PosterFile;
}

export interface TranscodedAudio {
  /** Of the decoded audio (more exact than an MP3's estimate), else the container's. */
  readonly durationSeconds: number;
  readonly title: string | null;
  readonly artist: string | null;
  readonly album: string | null;
  readonly variant: {
    readonly name: "audio";
    readonly path: string;
    readonly mime: "audio/mp4";
    readonly bytes: number;
    readonly bitrateKbps: number;
    readonly channels: number;
  };
  readonly waveform: { readonly path: string; readonly mime: "application/json"; readonly points: number; readonly peaks: readonly number[] };
  /** The embedded cover picture, for the image worker; null when there is none (or it was unusable). */
  readonly coverArt: { readonly path: string; readonly mime: "image/jpeg" | "image/png"; readonly bytes: number } | null;
}

// ---------------------------------------------------------------------------------------------

const PROBE_TIMEOUT_MS = 30_000;

function clampInteger(value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.round(value)));
}

/** Progress reports: whole percents, rising only, at most one per interval (except the final 100). */
class ProgressReporter {
  private last = -1;
  private lastAt = 0;

  constructor(
    private readonly callback: ((progress: TranscodeProgress) => void) | undefined,
    private readonly intervalMs: number,
  ) {}

  report(stage: TranscodeStage, percent: number): void {
    const value = Math.max(0, Math.min(99, Math.floor(percent)));
    if (value <= this.last) return;
    const now = Date.now();
    if (this.last >= 0 && now - this.lastAt < this.intervalMs) return;
    this.emit(stage, value, now);
  }

  done(): void {
    if (this.last < 100) this.emit("done", 100, Date.now());
  }

  private emit(stage: TranscodeStage, percent: number, now: number): void {
    this.last = percent;
    this.lastAt = now;
    try {
      this.callback?.({ stage, percent });
    } catch {
      // A failing listener must not fail the transcode.
    }
  }
}

interface FfmpegOutput {
  readonly file: string;
  readonly options: readonly string[];
}

interface FfmpegRun {
  /** Extra input options, e.g. `-ss` for the poster. */
  readonly inputOptions?: readonly string[];
  readonly outputs: readonly FfmpegOutput[];
  /** Media time the run covers, for progress. */
  readonly durationSeconds: number;
  readonly onFraction?: (fraction: number) => void;
}

/** One transcoding job: its clock, its stop signal and the processes it runs. */
class Job {
  private readonly startedAt = Date.now();
  private limitMs: number;
  readonly binaries: FfmpegBinaries;
  readonly threads: number;
  /** The demuxer forced on ffmpeg: the one the probe used (set by probe()). */
  private demuxer: string | undefined;

  constructor(
    readonly inputPath: string,
    private readonly options: TranscodeOptions,
  ) {
    this.binaries = options.binaries ?? ffmpegBinaries();
    this.threads = clampInteger(options.threads, 2, 1, 16);
    this.limitMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  }

  /** Once the duration is known, the default limit grows with it. */
  setDuration(durationSeconds: number): void {
    if (this.options.timeoutMs === undefined) this.limitMs = 120_000 + Math.ceil(durationSeconds * 3000);
  }

  private remainingMs(): number {
    return this.limitMs - (Date.now() - this.startedAt);
  }

  private timeoutError(): TranscodeError {
    return new TranscodeError("timeout", `Processing took longer than ${Math.ceil(this.limitMs / 1000)} s and was stopped.`);
  }

  /** Throws when the job has been aborted or is out of time. */
  checkStillRunning(): void {
    if (this.options.signal?.aborted) throw new TranscodeError("aborted", "Processing was cancelled.");
    if (this.remainingMs() <= 0) throw this.timeoutError();
  }

  async probe(): Promise<ProbeResult> {
    this.checkStillRunning();
    const remaining = this.remainingMs();
    try {
      const result = await probeMedia(this.inputPath, {
        formatHint: this.options.formatHint,
        binaries: this.binaries,
        timeoutMs: Math.min(remaining, PROBE_TIMEOUT_MS),
        signal: this.options.signal,
        onCommand: this.options.onCommand === undefined ? undefined : (program, args) => this.options.onCommand?.([program, ...args].join(" ")),
      });
      this.demuxer = result.demuxer;
      return result;
    } catch (error) {
      // The probe's own limit is shorter than the job's when the job has time left; report the job's.
      if (error instanceof TranscodeError && error.reason === "timeout" && remaining <= PROBE_TIMEOUT_MS) throw this.timeoutError();
      throw error;
    }
  }

  /** Runs ffmpeg once; resolves when it exits successfully, rejects with TranscodeError after it has exited. */
  ffmpeg(scratch: string, run: FfmpegRun): Promise<void> {
    if (this.demuxer === undefined) throw new Error("Job.ffmpeg() before probe()");
    this.checkStillRunning();
    const remaining = this.remainingMs();
    const threads = String(this.threads);
    const inputOptions = [
      "-nostdin",
      // fluent-ffmpeg adds -y only for outputs it takes for files, and not for "file:" URLs.
      "-y",
      "-hide_banner",
      "-loglevel", "error",
      "-nostats",
      "-progress", "pipe:2",
      "-filter_threads", threads,
      "-threads", threads,
      ...(run.inputOptions ?? []),
      "-protocol_whitelist", "file",
      "-f", this.demuxer,
    ];
    return new Promise<void>((resolve, reject) => {
      const command = ffmpeg({ cwd: scratch, stdoutLines: 20 });
      command.setFfmpegPath(this.binaries.ffmpeg);
      command.input(`file:${this.inputPath}`);
      addOptionsVerbatim(command, "input", inputOptions);
      for (const output of run.outputs) {
        command.output(`file:${output.file}`);
        addOptionsVerbatim(command, "output", output.options);
      }

      let started = false;
      let stopped: TranscodeError | null = null;
      const stop = (why: TranscodeError): void => {
        if (stopped !== null) return;
        stopped = why;
        if (started) command.kill("SIGKILL");
      };
      const timer = setTimeout(() => stop(this.timeoutError()), Math.max(1, remaining));
      const onAbort = (): void => stop(new TranscodeError("aborted", "Processing was cancelled."));
      this.options.signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = (): void => {
        clearTimeout(timer);
        this.options.signal?.removeEventListener("abort", onAbort);
      };

      const errorLines: string[] = [];
      command.on("start", (commandLine: string) => {
        started = true;
        if (stopped !== null) {
          command.kill("SIGKILL");
          return;
        }
        // fluent-ffmpeg reports "ffmpeg <args>"; name the binary that really runs.
        this.options.onCommand?.(`${this.binaries.ffmpeg}${commandLine.replace(/^ffmpeg/, "")}`);
      });
      command.on("stderr", (line: string) => {
        const progress = /^(\w+)=(.*)$/.exec(line.trim());
        if (progress !== null) {
          if ((progress[1] === "out_time_us" || progress[1] === "out_time_ms") && run.durationSeconds > 0) {
            // Both are microseconds (out_time_ms always was, despite its name).
            const micros = Number(progress[2]);
            if (Number.isFinite(micros) && micros >= 0) run.onFraction?.(Math.min(1, micros / 1e6 / run.durationSeconds));
          }
          return;
        }
        if (line.trim() !== "") {
          errorLines.push(line);
          if (errorLines.length > 20) errorLines.shift();
        }
      });
      command.on("error", (error: Error) => {
        cleanup();
        if (stopped !== null) {
          reject(stopped);
          return;
        }
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "EACCES") {
          reject(new TranscodeError("binary_missing", "Media processing is not available right now.", `${this.binaries.ffmpeg}: ${code}`, { cause: error }));
          return;
        }
        const detail = scrubDetail(errorLines.length > 0 ? errorLines.join("\n") : error.message, [this.inputPath, scratch]);
        reject(new TranscodeError("encode_failed", "The file could not be converted.", detail, { cause: error }));
      });
      command.on("end", () => {
        cleanup();
        resolve();
      });
      command.run();
    });
  }
}

/**
 * Adds options to the current input or output exactly as given. fluent-ffmpeg splits an array
 * element holding exactly one space into two arguments ("title=Herbal tea" would become
 * "title=Herbal" and an output file called "tea"): a tag from an uploaded file could then add an
 * output anywhere the worker may write. Passed as separate arguments (two or more), nothing is split.
 */
function addOptionsVerbatim(command: ffmpeg.FfmpegCommand, where: "input" | "output", options: readonly string[]): void {
  if (options.length < 2) throw new Error("addOptionsVerbatim needs at least two arguments (fluent-ffmpeg splits a lone one)");
  const [first, ...rest] = options as [string, ...string[]];
  if (where === "input") command.inputOptions(first, ...rest);
  else command.outputOptions(first, ...rest);
}

async function assertInputFile(inputPath: string): Promise<void> {
  assertLocalPath(inputPath);
  let stats: fs.Stats;
  try {
    stats = await fs.promises.stat(inputPath);
  } catch (error) {
    throw new TranscodeError("input_missing", "The uploaded file is not available for processing.", (error as NodeJS.ErrnoException).code, { cause: error });
  }
  if (!stats.isFile()) throw new TranscodeError("input_missing", "The uploaded file is not available for processing.", "not a regular file");
}

/** Runs `work` with a fresh scratch directory inside `workDir`, removed whatever happens. */
async function withScratch<T>(workDir: string, work: (scratch: string) => Promise<T>): Promise<T> {
  await fs.promises.mkdir(workDir, { recursive: true });
  const scratch = await fs.promises.mkdtemp(path.join(workDir, ".transcode-"));
  try {
    return await work(scratch);
  } finally {
    await fs.promises.rm(scratch, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Moves finished files from the scratch directory into `workDir`; all or none. */
async function publish(scratch: string, workDir: string, names: readonly string[]): Promise<Map<string, { path: string; bytes: number }>> {
  const moved: string[] = [];
  const result = new Map<string, { path: string; bytes: number }>();
  try {
    for (const name of names) {
      const target = path.join(workDir, name);
      const { size } = await fs.promises.stat(path.join(scratch, name));
      await fs.promises.rename(path.join(scratch, name), target);
      moved.push(target);
      result.set(name, { path: target, bytes: size });
    }
    return result;
  } catch (error) {
    await Promise.all(moved.map((file) => fs.promises.rm(file, { force: true })));
    throw error;
  }
}

/** Whether `file` holds a WebP image (ffmpeg leaves an 8-byte RIFF stub when no frame came out). */
async function isWebpImage(file: string): Promise<boolean> {
  try {
    const handle = await fs.promises.open(file, "r");
    try {
      const head = Buffer.alloc(16);
      const { bytesRead } = await handle.read(head, 0, 16, 0);
      const { size } = await handle.stat();
      return bytesRead === 16 && size > 26 && head.toString("latin1", 0, 4) === "RIFF" && head.toString("latin1", 8, 12) === "WEBP";
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

async function nonEmptyFile(file: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(file)).size > 0;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Video

function videoOutputOptions(
  rendition: PlannedRendition,
  job: Job,
  streams: { video: number; audio: number | null },
  settings: { preset: X264Preset; crf: number; audioBitrateKbps: number; frameRate: number | null; maxDurationSeconds: number },
): string[] {
  const filters = [`scale=${rendition.width}:${rendition.height}`, "setsar=1"];
  if (settings.frameRate !== null) filters.push(`fps=${settings.frameRate}`);
  filters.push("format=yuv420p");
  return [
    "-map", `0:${streams.video}`,
    ...(streams.audio === null ? [] : ["-map", `0:${streams.audio}`]),
    "-filter:v", filters.join(","),
    "-c:v", "libx264",
    "-preset", settings.preset,
    "-crf", String(settings.crf),
    "-maxrate", `${rendition.maxBitrateKbps}k`,
    "-bufsize", `${rendition.maxBitrateKbps * 2}k`,
    "-profile:v", "high",
    "-pix_fmt", "yuv420p",
    ...(streams.audio === null ? ["-an"] : ["-c:a", "aac", "-b:a", `${settings.audioBitrateKbps}k`, "-ac", "2"]),
    "-sn",
    "-dn",
    "-map_metadata", "-1",
    "-map_chapters", "-1",
    "-threads", String(job.threads),
    "-movflags", "+faststart",
    "-t", String(settings.maxDurationSeconds),
    "-f", "mp4",
  ];
}

/**
 * Transcodes a video into MP4 renditions (`720p.mp4`, `360p.mp4`) and `poster.webp` in `workDir`
 * (created when missing; same-named files are replaced, so a rerun is harmless). Throws
 * TranscodeError (see `permanent`); after a failure none of the job's files are in `workDir`.
 */
export async function transcodeVideo(inputPath: string, workDir: string, options: VideoTranscodeOptions): Promise<TranscodedVideo> {
  await assertInputFile(inputPath);
  const progress = new ProgressReporter(options.onProgress, options.progressIntervalMs ?? 500);
  progress.report("probe", 0);
  const job = new Job(inputPath, options);
  const probe = await job.probe();
  const { video, audio, durationSeconds } = checkVideoProbe(probe, options);
  job.setDuration(durationSeconds);
  const renditions = planRenditions(video.display, options.ladder);
  const top = renditions[0]!;
  const maxDurationSeconds = options.maxDurationSeconds ?? DEFAULT_MEDIA_LIMITS.maxDurationSeconds;
  const settings = {
    preset: options.preset ?? "veryfast",
    crf: clampInteger(options.crf, 23, 0, 51),
    audioBitrateKbps: clampInteger(options.audioBitrateKbps, 128, 32, 512),
    frameRate: cappedFrameRate(video.frameRate, options.maxFrameRate ?? 60),
    maxDurationSeconds,
  };
  const streams = { video: video.index, audio: audio?.index ?? null };

  return withScratch(workDir, async (scratch) => {
    await job.ffmpeg(scratch, {
      outputs: renditions.map((rendition) => ({
        file: path.join(scratch, `${rendition.name}.mp4`),
        options: videoOutputOptions(rendition, job, streams, settings),
      })),
      durationSeconds,
      onFraction: (fraction) => progress.report("transcode", 1 + fraction * 89),
    });
    progress.report("poster", 90);

    const posterFile = path.join(scratch, "poster.webp");
    const posterOptions = [
      "-map", `0:${video.index}`,
      "-frames:v", "1",
      "-filter:v", `scale=${top.width}:${top.height},setsar=1`,
      "-c:v", "libwebp",
      "-quality", String(clampInteger(options.posterQuality, 80, 0, 100)),
      "-an",
      "-sn",
      "-dn",
      "-map_metadata", "-1",
      "-threads", String(job.threads),
      "-f", "webp",
    ];
    let atSeconds = posterTimeSeconds(durationSeconds);
    await job.ffmpeg(scratch, { inputOptions: ["-ss", String(atSeconds)], outputs: [{ file: posterFile, options: posterOptions }], durationSeconds: 0 });
    if (!(await isWebpImage(posterFile)) && atSeconds > 0) {
      // The seek went past the last frame (a duration longer than the video stream): take the first.
      atSeconds = 0;
      await fs.promises.rm(posterFile, { force: true });
      await job.ffmpeg(scratch, { outputs: [{ file: posterFile, options: posterOptions }], durationSeconds: 0 });
    }
    if (!(await isWebpImage(posterFile))) throw new TranscodeError("encode_failed", "The file could not be converted.", "no frame for the poster");
    progress.report("poster", 99);

    job.checkStillRunning();
    const names = [...renditions.map((r) => `${r.name}.mp4`), "poster.webp"];
    const files = await publish(scratch, workDir, names);
    const poster = files.get("poster.webp")!;
    progress.done();
    return {
      durationSeconds: Math.round(durationSeconds * 1000) / 1000,
      width: video.display.width,
      height: video.display.height,
      hasAudio: audio !== null,
      variants: renditions.map((r) => {
        const file = files.get(`${r.name}.mp4`)!;
        return { name: r.name, path: file.path, mime: "video/mp4" as const, width: r.width, height: r.height, bytes: file.bytes };
      }),
      poster: { path: poster.path, mime: "image/webp", width: top.width, height: top.height, bytes: poster.bytes, atSeconds },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Audio

const COVER_FORMATS: Readonly<Record<string, { extension: "jpg" | "png"; mime: "image/jpeg" | "image/png" }>> = {
  mjpeg: { extension: "jpg", mime: "image/jpeg" },
  png: { extension: "png", mime: "image/png" },
};

/**
 * Transcodes audio into `audio.m4a`, `waveform.json` and (when embedded) `cover.jpg`/`cover.png` in
 * `workDir` (created when missing; same-named files are replaced). Throws TranscodeError (see
 * `permanent`); after a failure none of the job's files are in `workDir`.
 */
export async function transcodeAudio(inputPath: string, workDir: string, options: AudioTranscodeOptions): Promise<TranscodedAudio> {
  await assertInputFile(inputPath);
  const progress = new ProgressReporter(options.onProgress, options.progressIntervalMs ?? 500);
  progress.report("probe", 0);
  const job = new Job(inputPath, options);
  const probe = await job.probe();
  const { audio, durationSeconds } = checkAudioProbe(probe, options);
  job.setDuration(durationSeconds);
  const maxDurationSeconds = options.maxDurationSeconds ?? DEFAULT_MEDIA_LIMITS.maxDurationSeconds;
  const bitrateKbps = clampInteger(options.bitrateKbps, 128, 32, 320);
  const channels = Math.min(2, audio.channels);
  const points = clampInteger(options.waveformPoints, WAVEFORM_POINTS, 1, 10_000);
  const sampleRate = waveformSampleRate(durationSeconds, points);
  const { title, artist, album } = probe.tags;

  return withScratch(workDir, async (scratch) => {
    const m4a = path.join(scratch, "audio.m4a");
    const pcm = path.join(scratch, "waveform.pcm");
    const metadata: string[] = [];
    if (title !== null) metadata.push("-metadata", `title=${title}`);
    if (artist !== null) metadata.push("-metadata", `artist=${artist}`);
    if (album !== null) metadata.push("-metadata", `album=${album}`);
    await job.ffmpeg(scratch, {
      outputs: [
        {
          file: m4a,
          options: [
            "-map", `0:${audio.index}`,
            "-vn",
            "-sn",
            "-dn",
            "-c:a", "aac",
            "-b:a", `${bitrateKbps}k`,
            "-ac", String(channels),
            "-map_metadata", "-1",
            "-map_chapters", "-1",
            ...metadata,
            "-threads", String(job.threads),
            "-movflags", "+faststart",
            "-t", String(maxDurationSeconds),
            "-f", "ipod",
          ],
        },
        {
          file: pcm,
          options: [
            "-map", `0:${audio.index}`,
            "-vn",
            "-ac", "1",
            "-ar", String(sampleRate),
            "-c:a", "pcm_s16le",
            "-t", String(maxDurationSeconds),
            "-f", "s16le",
          ],
        },
      ],
      durationSeconds,
      onFraction: (fraction) => progress.report("transcode", 1 + fraction * 84),
    });

    let cover: { name: string; mime: "image/jpeg" | "image/png" } | null = null;
    if (probe.coverArt !== null) {
      progress.report("cover", 86);
      const known = COVER_FORMATS[probe.coverArt.codec];
      const name = `cover.${known?.extension ?? "png"}`;
      try {
        await job.ffmpeg(scratch, {
          outputs: [
            {
              file: path.join(scratch, name),
              options: [
                "-map", `0:${probe.coverArt.index}`,
                ...(known === undefined ? ["-c:v", "png"] : ["-c:v", "copy"]),
                "-frames:v", "1",
                "-an",
                "-map_metadata", "-1",
                "-update", "1",
                "-f", "image2",
              ],
            },
          ],
          durationSeconds: 0,
        });
        if (await nonEmptyFile(path.join(scratch, name))) cover = { name, mime: known?.mime ?? "image/png" };
      } catch (error) {
        // The picture is optional; the job's own time limit and abort are not.
        if (error instanceof TranscodeError && (error.reason === "timeout" || error.reason === "aborted")) throw error;
      }
    }

    progress.report("waveform", 90);
    const { size: pcmBytes } = await fs.promises.stat(pcm);
    const peaks = await peaksFromPcmFile(pcm, points);
    await fs.promises.rm(pcm, { force: true });
    const decodedSeconds = pcmBytes / 2 / sampleRate;
    const duration = Math.round((decodedSeconds > 0 ? decodedSeconds : durationSeconds) * 1000) / 1000;
    await writeWaveformJson(path.join(scratch, "waveform.json"), { version: 1, points, sampleRate, durationSeconds: duration, peaks });
    progress.report("waveform", 99);

    job.checkStillRunning();
    const names = ["audio.m4a", "waveform.json", ...(cover === null ? [] : [cover.name])];
    const files = await publish(scratch, workDir, names);
    const audioFile = files.get("audio.m4a")!;
    const coverFile = cover === null ? undefined : files.get(cover.name);
    progress.done();
    return {
      durationSeconds: duration,
      title,
      artist,
      album,
      variant: { name: "audio", path: audioFile.path, mime: "audio/mp4", bytes: audioFile.bytes, bitrateKbps, channels },
      waveform: { path: files.get("waveform.json")!.path, mime: "application/json", points, peaks },
      coverArt: cover === null || coverFile === undefined ? null : { path: coverFile.path, mime: cover.mime, bytes: coverFile.bytes },
    };
  });
}

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
 * The parts: transcode-options.ts (what a caller may ask), transcode-job.ts (time limit, abort,
 * progress, running ffprobe and ffmpeg), ffmpeg-arguments.ts (each step's ffmpeg arguments) and
 * transcode-files.ts (the input check, the scratch directory, moving finished files out).
 */
import fs from "node:fs";
import path from "node:path";
import type { VideoEncoding } from "./ffmpeg-arguments";
import { audioM4aArguments, coverArtArguments, posterArguments, videoRenditionArguments, waveformPcmArguments } from "./ffmpeg-arguments";
import { checkAudioProbe, checkVideoProbe, DEFAULT_MEDIA_LIMITS, TranscodeError } from "./probe";
import { assertInputFile, isWebpImage, nonEmptyFile, publish, withScratch } from "./transcode-files";
import { Job, ProgressReporter } from "./transcode-job";
import type { AudioTranscodeOptions, VideoTranscodeOptions } from "./transcode-options";
import { clampInteger } from "./transcode-options";
import type { VideoRenditionName } from "./video-plan";
import { cappedFrameRate, planRenditions, posterTimeSeconds } from "./video-plan";
import { peaksFromPcmFile, WAVEFORM_POINTS, waveformSampleRate, writeWaveformJson } from "./waveform";

export { TranscodeError } from "./probe";
export type { TranscodeFailureReason, ProbeResult, MediaLimits } from "./probe";
export type { AudioTranscodeOptions, TranscodeOptions, TranscodeProgress, TranscodeStage, VideoTranscodeOptions, X264Preset } from "./transcode-options";

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
  const settings: VideoEncoding = {
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
        options: videoRenditionArguments(rendition, job.threads, streams, settings),
      })),
      durationSeconds,
      onFraction: (fraction) => progress.report("transcode", 1 + fraction * 89),
    });
    progress.report("poster", 90);

    const posterFile = path.join(scratch, "poster.webp");
    const posterOptions = posterArguments(video.index, top, clampInteger(options.posterQuality, 80, 0, 100), job.threads);
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
    await job.ffmpeg(scratch, {
      outputs: [
        { file: m4a, options: audioM4aArguments(audio.index, { bitrateKbps, channels, maxDurationSeconds, threads: job.threads }, { title, artist, album }) },
        { file: pcm, options: waveformPcmArguments(audio.index, sampleRate, maxDurationSeconds) },
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
          outputs: [{ file: path.join(scratch, name), options: coverArtArguments(probe.coverArt.index, known === undefined) }],
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

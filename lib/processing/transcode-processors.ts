import path from "node:path";
import type { FailureReason } from "../jobs/job-state";
import { ProcessingError } from "../jobs/processor";
import type { ProcessingJob, Processor, ProcessorContext, VariantFile } from "../jobs/processor";
import { ImageProcessingError, processImage } from "./images";
import { TranscodeError, transcodeAudio, transcodeVideo } from "./transcode";
import type { TranscodeFailureReason } from "./transcode";

export interface TranscodeSettings {
  readonly maxDurationSeconds: number;
  readonly threads: number;
  readonly limitInputPixels: number;
}

const REASONS: Partial<Record<TranscodeFailureReason, FailureReason>> = {
  unreadable: "corrupt",
  unsupported_format: "unsupported_format",
  unsupported_codec: "unsupported_format",
  no_video_stream: "no_media_stream",
  no_audio_stream: "no_media_stream",
  unknown_duration: "corrupt",
  too_long: "too_long",
  bad_dimensions: "too_many_pixels",
  timeout: "processing_timeout",
};

/** ffmpeg's failures as the job machinery's: bad input is permanent (not retried), the rest may be retried. */
async function translated<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof TranscodeError) {
      throw new ProcessingError(REASONS[error.reason] ?? "processing_error", error.message, { permanent: error.permanent, cause: error });
    }
    throw error;
  }
}

/** What every ffmpeg run of a job is given: the sniffed type, the limits, cancellation and progress. */
function transcodeOptions(job: ProcessingJob, context: ProcessorContext, settings: TranscodeSettings) {
  return {
    formatHint: job.mime,
    threads: settings.threads,
    maxDurationSeconds: settings.maxDurationSeconds,
    signal: context.signal,
    onProgress: ({ percent }: { percent: number }) => context.reportProgress("processing", percent),
  };
}

/** Video: H.264/AAC MP4 at 720p and 360p (as the source allows) and a WebP poster. */
export function videoProcessor(settings: TranscodeSettings): Processor {
  return async (job, context) => {
    const original = await context.downloadOriginal();
    const video = await translated(() =>
      transcodeVideo(original, path.join(context.workDir, "video"), transcodeOptions(job, context, settings)),
    );
    await context.saveVariants([
      ...video.variants.map((variant) => ({ ...variant, extension: "mp4", durationSeconds: video.durationSeconds })),
      { name: "poster", path: video.poster.path, mime: video.poster.mime, extension: "webp", width: video.poster.width, height: video.poster.height },
    ]);
    return { width: video.width, height: video.height, durationSeconds: video.durationSeconds };
  };
}

/** Audio: AAC in M4A, waveform peaks as JSON, and embedded cover art as an image variant. */
export function audioProcessor(settings: TranscodeSettings): Processor {
  return async (job, context) => {
    const original = await context.downloadOriginal();
    const audio = await translated(() =>
      transcodeAudio(original, path.join(context.workDir, "audio"), transcodeOptions(job, context, settings)),
    );
    const variants: VariantFile[] = [
      { name: "audio", path: audio.variant.path, mime: audio.variant.mime, extension: "m4a", durationSeconds: audio.durationSeconds },
      { name: "waveform", path: audio.waveform.path, mime: audio.waveform.mime, extension: "json" },
    ];
    if (audio.coverArt) {
      // Cover art goes through the image pipeline too: metadata stripped, a web size.
      try {
        const cover = await processImage({ path: audio.coverArt.path }, path.join(context.workDir, "cover"), { limitInputPixels: settings.limitInputPixels });
        const display = cover.variants.find((variant) => variant.name === "display");
        if (display) variants.push({ name: "cover", path: display.path, mime: display.mime, extension: display.extension, width: display.width, height: display.height });
      } catch (error) {
        // A damaged cover does not spoil the audio.
        if (!(error instanceof ImageProcessingError)) throw error;
      }
    }
    await context.saveVariants(variants);
    const tagged = [audio.artist, audio.title].filter(Boolean).join(" – ");
    return { durationSeconds: audio.durationSeconds, title: tagged || null };
  };
}

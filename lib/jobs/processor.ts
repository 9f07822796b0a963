import type { FailureReason } from "./job-state";
import type { ProgressStage } from "./progress-throttle";

/** The durable job message (the channel payload). The row is the truth; this only says which row. */
export interface JobMessage {
  readonly id: string;
  readonly ownerId: string;
  readonly kind: string;
}

/** What a processor is given about the item (read from the row when the job is claimed). */
export interface ProcessingJob {
  readonly mediaId: string;
  readonly ownerId: string;
  readonly kind: "image" | "video" | "audio";
  /** Sniffed at upload. */
  readonly mime: string;
  readonly originalKey: string;
  /** 1-based; bounded by JOB_MAX_ATTEMPTS. */
  readonly attempt: number;
}

/** A rendition made by a processor, as a local file the job machinery stores. */
export interface VariantFile {
  /** Contract names: thumb, display, display-jpeg, 720p, 360p, poster, audio, waveform, cover. */
  readonly name: string;
  readonly path: string;
  readonly mime: string;
  /** Object key extension (webp, jpg, mp4, m4a, json). */
  readonly extension: string;
  readonly width?: number | null;
  readonly height?: number | null;
  readonly durationSeconds?: number | null;
}

/** A variant whose file is stored: what a worker reports for the media service to record. */
export interface StoredVariant {
  readonly name: string;
  readonly objectKey: string;
  readonly mime: string;
  readonly width: number | null;
  readonly height: number | null;
  readonly durationSeconds: number | null;
  readonly bytes: number;
}

/** What the job machinery hands a processor. */
export interface ProcessorContext {
  /** A private temporary directory, removed by the machinery on every path. */
  readonly workDir: string;
  /** Copies the original to a local file in workDir (once) and gives its path. */
  downloadOriginal(): Promise<string>;
  /** Throttled by the machinery; call as often as you like. */
  reportProgress(stage: ProgressStage, percent: number): void;
  /**
   * Stores the files (all at once) and then records the variants together, in one write: either all
   * of them are recorded or none. Keyed by media id and name, so a rerun overwrites, never duplicates.
   */
  saveVariants(variants: readonly VariantFile[]): Promise<void>;
  /** Aborted when the node stops: stop work and throw. */
  readonly signal: AbortSignal;
}

/** Recorded on the row when the item becomes ready. */
export interface ProcessingResult {
  readonly width?: number | null;
  readonly height?: number | null;
  readonly durationSeconds?: number | null;
  readonly placeholder?: string | null;
  /** A title found in the file (audio tags), kept only when the owner gave none. */
  readonly title?: string | null;
}

export type Processor = (job: ProcessingJob, context: ProcessorContext) => Promise<ProcessingResult>;

/**
 * A failure with a reason the owner can read. `permanent` failures (the input is bad:
 * corrupt, unsupported, too long) are not retried; others are, up to the attempt limit.
 */
export class ProcessingError extends Error {
  readonly permanent: boolean;

  constructor(
    readonly reason: FailureReason,
    message: string,
    options: { permanent: boolean; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.name = "ProcessingError";
    this.permanent = options.permanent;
  }
}

/** Processors by media kind. A node registers the ones it can run; a kind without one is left `uploaded`. */
export type ProcessorRegistry = Partial<Record<ProcessingJob["kind"], Processor>>;

/**
 * One transcoding job: its wall-clock limit, its stop signal, the ffprobe and ffmpeg processes it
 * runs, and its progress reports.
 *
 * fluent-ffmpeg caveats handled here: a `progress` listener would make it run its own ffprobe on the
 * input without `-f` or the whitelist, so progress is read from `-progress pipe:2` on stderr instead;
 * `kill()` before the process has spawned does nothing, so a stop requested early is applied on
 * `start`; and `setFfmpegPath()` is process-wide, so every job of a process must use the same
 * binaries (ffmpegBinaries() decides once).
 */
import ffmpeg from "fluent-ffmpeg";
import { ffmpegInputArguments } from "./ffmpeg-arguments";
import type { FfmpegBinaries } from "./ffmpeg-binaries";
import { ffmpegBinaries } from "./ffmpeg-binaries";
import type { ProbeResult } from "./probe";
import { probeMedia, scrubDetail, TranscodeError } from "./probe";
import type { TranscodeOptions, TranscodeProgress, TranscodeStage } from "./transcode-options";
import { clampInteger } from "./transcode-options";

const PROBE_TIMEOUT_MS = 30_000;

/** Progress reports: whole percents, rising only, at most one per interval (except the final 100). */
export class ProgressReporter {
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

export interface FfmpegRun {
  /** Extra input options, e.g. `-ss` for the poster. */
  readonly inputOptions?: readonly string[];
  readonly outputs: readonly FfmpegOutput[];
  /** Media time the run covers, for progress. */
  readonly durationSeconds: number;
  readonly onFraction?: (fraction: number) => void;
}

/** One transcoding job: its clock, its stop signal and the processes it runs. */
export class Job {
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
    const inputOptions = ffmpegInputArguments({ threads: this.threads, demuxer: this.demuxer, extra: run.inputOptions ?? [] });
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

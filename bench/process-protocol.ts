/** One ffmpeg or ffprobe run as the worker made it (recorded by bench/process-direct.ts). */
export interface RecordedCommand {
  readonly program: "ffmpeg" | "ffprobe";
  /** The real binary. */
  readonly binary: string;
  /** Working directory: the job's scratch directory for ffmpeg. */
  readonly cwd: string;
  readonly args: readonly string[];
}

/** What bench/process-direct.ts reports to bench/process.ts (one JSON line on stdout). */
export interface DirectResult {
  /** Measured jobs (warm-up not included). */
  readonly jobs: number;
  /** From the start of the first measured job to the end of the last. */
  readonly wallSeconds: number;
  /** Each measured job's own duration, in submission order. */
  readonly jobSeconds: readonly number[];
  /** CPU time of the Node process during the measured jobs (sharp's threads included; ffmpeg not). */
  readonly processCpuSeconds: number;
  /** CPU time of the child processes (ffmpeg, ffprobe) that ended during the measured jobs. */
  readonly childCpuSeconds: number;
  /** Video: the command lines of the warm-up job, replayed for every measured job. */
  readonly commands?: readonly RecordedCommand[];
}

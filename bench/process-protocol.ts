/** What bench/process-direct.ts reports to bench/process.ts (one JSON line on stdout). */
export interface DirectResult {
  /** Measured jobs (warm-up not included). */
  readonly jobs: number;
  /** From the start of the first measured job to the end of the last. */
  readonly wallSeconds: number;
  /** Each measured job's own duration, in submission order. */
  readonly jobSeconds: readonly number[];
  /** CPU time of the Node process (sharp's threads included; ffmpeg child processes not). */
  readonly processCpuSeconds: number;
}

/** Retry delays for processing jobs: growing, capped, jittered. */
export interface BackoffOptions {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * The delay before attempt `attempt + 1`, after `attempt` (1-based) failed: base × 2^(attempt-1),
 * capped, with "equal jitter" (half fixed, half random) so that items failing together (an
 * outage) do not all come back in the same instant, yet each retry still waits a while.
 */
export function retryDelayMs(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

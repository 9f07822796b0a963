import { backOff } from "exponential-backoff";

export interface RetryOptions {
  /** What is being waited for, for the log: "the membership database primary". */
  readonly waitingFor: string;
  readonly isRetryable: (error: unknown) => boolean;
  readonly onRetry: (message: string) => void;
  /** Stops retrying (for example when the node is shutting down). */
  readonly shouldStop?: () => boolean;
  readonly maxDelayMs?: number;
}

/** Retries with growing delay, without limit, for as long as the failure is one that waiting can fix. */
export function retryUntilAvailable<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  return backOff(attempt, {
    numOfAttempts: Number.MAX_SAFE_INTEGER,
    startingDelay: 250,
    timeMultiple: 2,
    maxDelay: options.maxDelayMs ?? 10_000,
    jitter: "full",
    retry: (error: unknown, attemptNumber: number) => {
      if (options.shouldStop?.() || !options.isRetryable(error)) return false;
      const reason = error instanceof Error ? error.message : String(error);
      options.onRetry(`waiting for ${options.waitingFor} (attempt ${attemptNumber}): ${reason}`);
      return true;
    },
  });
}

/** setTimeout's longest delay (about 24.8 days); a later end is reached in steps. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

export interface SessionEndWatchOptions {
  /** When the session ends, read again now (activity may have extended it); undefined once it has ended. */
  readonly endOf: () => Promise<number | undefined>;
  /** Called once, when the session has ended or could not be confirmed live. */
  readonly ended: () => void;
  readonly now?: () => number;
}

/**
 * Watches one session for its end, expected at `endsAt`: at that moment it reads the session again
 * and either waits for its new end or reports it ended. Returns a function that stops watching.
 */
export function watchSessionEnd(endsAt: number, options: SessionEndWatchOptions): () => void {
  const now = options.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const finish = () => {
    if (stopped) return;
    stopped = true;
    options.ended();
  };
  const check = () => {
    timer = undefined;
    if (stopped) return;
    options.endOf().then(
      (next) => {
        if (stopped) return;
        if (next === undefined) finish();
        else arm(next);
      },
      // Past its known end and not confirmed live: the session is treated as ended (the client may connect again).
      finish,
    );
  };
  const arm = (at: number) => {
    timer = setTimeout(check, Math.min(Math.max(at - now(), 0), LONGEST_TIMER_MS));
    timer.unref();
  };

  arm(endsAt);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

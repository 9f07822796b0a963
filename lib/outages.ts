/** Where a dependency's outages are reported (a Moleculer logger fits). */
export interface OutageLog {
  error(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
  debug?(message: string, ...details: unknown[]): void;
}

/** What follows a dependency's outages (the Redis circuit, the bucket's outage) tells its listeners of each. */
export class OutageReports {
  private readonly openListeners = new Set<(cause: unknown) => void>();
  private readonly recoveredListeners = new Set<() => void>();

  /** Calls the listener each time an outage begins, with what began it; returns a function that removes it. */
  onOpen(listener: (cause: unknown) => void): () => void {
    this.openListeners.add(listener);
    return () => this.openListeners.delete(listener);
  }

  /** Calls the listener each time an outage ends. */
  onRecovered(listener: () => void): () => void {
    this.recoveredListeners.add(listener);
    return () => this.recoveredListeners.delete(listener);
  }

  protected reportOpen(cause: unknown): void {
    for (const listener of this.openListeners) listener(cause);
  }

  protected reportRecovered(): void {
    for (const listener of this.recoveredListeners) listener();
  }
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return cause === undefined ? "no reason given" : String(cause);
}

/**
 * Reports outages once each: an error when one begins (with what began it), an info when it ends, and nothing for
 * the failed attempts and skipped calls in between. Returns a function that stops.
 */
export function logOutages(outages: Pick<OutageReports, "onOpen" | "onRecovered">, log: OutageLog, what: string, now: () => number = Date.now): () => void {
  let openedAt = 0;
  const stopOpen = outages.onOpen((cause) => {
    openedAt = now();
    log.error(`${what} is unavailable (${describeCause(cause)}): going on without it until it answers again`);
  });
  const stopRecovered = outages.onRecovered(() => {
    log.info(`${what} is available again after ${Math.max(0, Math.round((now() - openedAt) / 1000))} s`);
  });
  return () => {
    stopOpen();
    stopRecovered();
  };
}

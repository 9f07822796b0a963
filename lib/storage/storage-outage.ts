import { OutageReports } from "../outages";

/** While an outage lasts, the store is probed this often. */
export const STORAGE_PROBE_INTERVAL_MS = 2000;

/**
 * Whether the bucket is known to be out of reach. The first call that finds it unreachable begins an outage; the
 * calls after it then fail at once instead of each waiting out a hanging store's silence (30 s a try), until a
 * probe, every STORAGE_PROBE_INTERVAL_MS, gets an answer from the store.
 */
export class StorageOutage extends OutageReports {
  private cause: unknown;
  private ongoing = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** `probe` resolves when the store answers, and rejects while it cannot be reached. */
  constructor(
    private readonly probe: () => Promise<unknown>,
    private readonly probeIntervalMs = STORAGE_PROBE_INTERVAL_MS,
  ) {
    super();
  }

  /** True from a failure to reach the store until a probe reaches it. */
  get known(): boolean {
    return this.ongoing;
  }

  /** What began the outage under way (undefined when none is). */
  get reason(): unknown {
    return this.ongoing ? this.cause : undefined;
  }

  /** The store could not be reached (`cause`): begins an outage unless one is under way. */
  begin(cause: unknown): void {
    if (this.ongoing || this.stopped) return;
    this.ongoing = true;
    this.cause = cause;
    this.reportOpen(cause);
    this.scheduleProbe();
  }

  /** Stops probing (the node is stopping). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.probeTimer);
  }

  private scheduleProbe(): void {
    if (this.probeTimer !== undefined || this.stopped) return;
    this.probeTimer = setTimeout(() => void this.runProbe(), this.probeIntervalMs);
    this.probeTimer.unref();
  }

  private async runProbe(): Promise<void> {
    try {
      await this.probe();
      if (this.stopped) return;
      this.ongoing = false;
      this.cause = undefined;
      this.reportRecovered();
    } catch {
      // Still out of reach.
    } finally {
      this.probeTimer = undefined;
      if (this.ongoing) this.scheduleProbe();
    }
  }
}

import type { RenewableLease, RenewableLeaseLock } from "../jobs/lease-lock";

export interface SingletonDutyOptions {
  /** Names the duty in logs. */
  readonly name: string;
  /** Shared by every node that may run the duty (the runtime's `leaseLock(name)`). */
  readonly lock: RenewableLeaseLock;
  /** How long the lease outlives its holder: another node takes over at most this long after the holder dies. */
  readonly leaseMs: number;
  /** Starts the duty on this node; answers how to stop it. */
  readonly begin: () => Promise<() => Promise<void>>;
  readonly log: { info(message: string): void; warn(message: string): void };
}

export interface SingletonDutyStatus {
  readonly holding: boolean;
  /** When this node last took the lease. */
  readonly since: number | undefined;
  readonly lastError: string | undefined;
}

/**
 * Continuous work that one node at a time runs (the binlog archiver): each node tries for the lease every
 * third of it; the holder runs the duty and renews the lease as often, and stops the duty as soon as it
 * cannot renew, so that two nodes never run it past one lease.
 */
export class SingletonDuty {
  private lease: RenewableLease | undefined;
  private endDuty: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private since: number | undefined;
  private lastError: string | undefined;
  private turn: Promise<void> = Promise.resolve();

  constructor(private readonly options: SingletonDutyOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(1, Math.floor(this.options.leaseMs / 3)));
    this.timer.unref();
  }

  /** Stops the duty here (if it runs here) and gives the lease up for another node. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.turn;
    await this.letGo();
  }

  status(): SingletonDutyStatus {
    return { holding: this.endDuty !== undefined, since: this.since, lastError: this.lastError };
  }

  /** One turn at a time: take the lease and begin, or renew it, or stop on losing it. */
  private tick(): Promise<void> {
    this.turn = this.turn.then(() => this.takeTurn()).catch((error: Error) => {
      this.lastError = error.message;
      this.options.log.warn(`${this.options.name}: ${error.message}`);
    });
    return this.turn;
  }

  private async takeTurn(): Promise<void> {
    if (this.stopped) return;
    const { lock, leaseMs, name, log } = this.options;
    if (this.lease) {
      const renewed = await this.lease.renew(leaseMs).catch((error: Error) => {
        this.lastError = `the lease could not be renewed: ${error.message}`;
        return false;
      });
      if (renewed) return;
      log.warn(`${name}: the lease was lost; stopping here (another node may take over)`);
      await this.letGo();
      return;
    }
    this.lease = await lock.tryHold(leaseMs);
    if (!this.lease) return;
    this.since = Date.now();
    try {
      this.endDuty = await this.options.begin();
      log.info(`${name}: runs on this node`);
    } catch (error) {
      await this.letGo();
      throw error;
    }
  }

  private async letGo(): Promise<void> {
    const end = this.endDuty;
    const lease = this.lease;
    this.endDuty = undefined;
    this.lease = undefined;
    await end?.().catch((error: Error) => this.options.log.warn(`${this.options.name}: stopping failed: ${error.message}`));
    await lease?.release().catch(() => undefined);
  }
}

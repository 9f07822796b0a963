import type { LeaseLock } from "../jobs/lease-lock";
import { defaultLeaseMs, describeSchedule, nextFiring } from "./schedule";
import type { Schedule } from "./schedule";

/** What started a run: the node starting, the schedule, or someone asking (REPL, admin API, tests). */
export type Trigger = "start" | "schedule" | "demand";

/** `skipped`: another node held the lease, or this node's previous run was still going. */
export type RunOutcome = "succeeded" | "failed" | "skipped";

export interface TaskRun<T> {
  readonly trigger: Trigger;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly outcome: RunOutcome;
  /** Why it failed or was skipped. */
  readonly reason?: string;
  /** What a successful run answered. */
  readonly result?: T;
}

export interface PeriodicTaskStatus<T = unknown> {
  readonly name: string;
  readonly schedule: string;
  readonly running: boolean;
  readonly nextRunAt: number | undefined;
  /** The last run that went ahead on this node (succeeded or failed). */
  readonly lastRun: TaskRun<T> | undefined;
  /** The last firing that did not run here, and why. */
  readonly lastSkipped: TaskRun<T> | undefined;
  readonly lastSuccessAt: number | undefined;
  /** Failed runs since the last success (skipped ones do not count either way). */
  readonly failuresInARow: number;
}

export interface Clock {
  now(): number;
  setTimer(callback: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/** setTimeout's longest delay (about 24.8 days); a later firing is reached in steps. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, ms) {
    const timer = setTimeout(callback, Math.min(Math.max(ms, 0), LONGEST_TIMER_MS));
    // A schedule never keeps a process alive on its own.
    timer.unref();
    return timer;
  },
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface TaskLogger {
  warn(message: string): void;
}

export interface PeriodicTaskOptions<T> {
  /** Names the task in status, logs, and (through the runtime) its lease. */
  readonly name: string;
  readonly schedule: Schedule;
  /** One lease per task across every node that runs it (Redis in cluster mode, memory when embedded). */
  readonly lock: LeaseLock;
  /** The work; `signal` aborts when the task stops (the node shutting down). */
  readonly run: (trigger: Trigger, signal: AbortSignal) => Promise<T>;
  /** How long one run holds the lease: longer than a run takes. Default: the schedule's interval, at least a minute. */
  readonly leaseMs?: number;
  /**
   * After a successful run, keep the lease until it runs out instead of releasing it, so that nodes whose
   * timers fire at other moments do not run the work again within the lease (a sweep due once per interval).
   */
  readonly keepLeaseAfterSuccess?: boolean;
  /** Also run once when started (before the schedule's first firing). */
  readonly runAtStart?: boolean;
  readonly log: TaskLogger;
  readonly clock?: Clock;
}

/**
 * Periodic cluster-wide work: on each firing of its schedule, the node that takes the lease runs it and
 * the others skip. Records each run's outcome, logs failures, and stops (aborting the run) on `stop()`.
 */
export class PeriodicTask<T = unknown> {
  private readonly clock: Clock;
  private readonly stopping = new AbortController();
  private timer: unknown;
  private nextRunAt: number | undefined;
  private current: Promise<TaskRun<T>> | undefined;
  private lastRun: TaskRun<T> | undefined;
  private lastSkipped: TaskRun<T> | undefined;
  private lastSuccessAt: number | undefined;
  private failuresInARow = 0;

  constructor(private readonly options: PeriodicTaskOptions<T>) {
    this.clock = options.clock ?? systemClock;
    // A schedule that cannot fire fails here, at wiring, rather than silently never running.
    nextFiring(options.schedule, this.clock.now());
  }

  get name(): string {
    return this.options.name;
  }

  start(): void {
    if (this.stopping.signal.aborted) throw new Error(`periodic task ${this.name} was stopped; make a new one`);
    if (this.options.runAtStart) void this.runNow("start");
    this.arm(this.clock.now());
  }

  /** Runs now unless another node holds the lease or a run is still going here; answers the run's record. */
  runNow(trigger: Trigger = "demand"): Promise<TaskRun<T>> {
    const startedAt = this.clock.now();
    if (this.stopping.signal.aborted) return Promise.resolve(this.record({ trigger, startedAt, finishedAt: startedAt, outcome: "skipped", reason: "stopped" }));
    if (this.current) {
      return Promise.resolve(this.record({ trigger, startedAt, finishedAt: startedAt, outcome: "skipped", reason: "the previous run is still going on this node" }));
    }
    const run = this.runUnderLease(trigger, startedAt).finally(() => {
      this.current = undefined;
    });
    this.current = run;
    return run;
  }

  /** Fires no more, aborts a run in progress and waits for it to end. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.clock.clearTimer(this.timer);
    this.nextRunAt = undefined;
    await this.current;
  }

  status(): PeriodicTaskStatus<T> {
    return {
      name: this.name,
      schedule: describeSchedule(this.options.schedule),
      running: this.current !== undefined,
      nextRunAt: this.nextRunAt,
      lastRun: this.lastRun,
      lastSkipped: this.lastSkipped,
      lastSuccessAt: this.lastSuccessAt,
      failuresInARow: this.failuresInARow,
    };
  }

  private arm(after: number): void {
    const at = nextFiring(this.options.schedule, after);
    this.nextRunAt = at;
    if (at === undefined || this.stopping.signal.aborted) return;
    const wait = () => {
      const left = at - this.clock.now();
      if (left > 0) {
        // Early (a delay longer than one timer can hold): wait the rest.
        this.timer = this.clock.setTimer(wait, left);
        return;
      }
      void this.runNow("schedule");
      this.arm(at);
    };
    this.timer = this.clock.setTimer(wait, at - this.clock.now());
  }

  private async runUnderLease(trigger: Trigger, startedAt: number): Promise<TaskRun<T>> {
    const { options } = this;
    let release: (() => Promise<void>) | undefined;
    try {
      release = await options.lock.tryAcquire(options.leaseMs ?? defaultLeaseMs(options.schedule, startedAt));
    } catch (error) {
      return this.failed(trigger, startedAt, `the lease could not be taken: ${(error as Error).message}`);
    }
    if (!release) return this.record({ trigger, startedAt, finishedAt: this.clock.now(), outcome: "skipped", reason: "another node holds the lease" });
    let succeeded = false;
    try {
      const result = await options.run(trigger, this.stopping.signal);
      succeeded = true;
      this.failuresInARow = 0;
      this.lastSuccessAt = this.clock.now();
      return this.record({ trigger, startedAt, finishedAt: this.lastSuccessAt, outcome: "succeeded", result });
    } catch (error) {
      return this.failed(trigger, startedAt, (error as Error).message ?? String(error));
    } finally {
      // Failed: let any node try again at its next turn.
      if (!succeeded || !options.keepLeaseAfterSuccess) {
        await release().catch((error: Error) => options.log.warn(`${this.name}: the lease could not be released (it runs out by itself): ${error.message}`));
      }
    }
  }

  private failed(trigger: Trigger, startedAt: number, reason: string): TaskRun<T> {
    this.failuresInARow += 1;
    this.options.log.warn(`${this.name} failed (${trigger}, ${this.failuresInARow} in a row): ${reason}`);
    return this.record({ trigger, startedAt, finishedAt: this.clock.now(), outcome: "failed", reason });
  }

  private record(run: TaskRun<T>): TaskRun<T> {
    if (run.outcome === "skipped") this.lastSkipped = run;
    else this.lastRun = run;
    return run;
  }
}

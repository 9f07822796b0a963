import type { HealthStatus } from "./db/database";

export interface CheckResult {
  readonly status: HealthStatus;
  readonly [detail: string]: unknown;
}

export type HealthCheck = () => CheckResult | Promise<CheckResult>;

/** Where the node is in its life: it serves only while `ready`. */
export type NodePhase = "starting" | "ready" | "stopping";

export interface HealthReport {
  /** starting or stopping outside `ready`; down when a required check is down; degraded when anything is less than ok. */
  readonly status: HealthStatus | Exclude<NodePhase, "ready">;
  readonly checks: Readonly<Record<string, CheckResult>>;
}

const CHECK_TIMEOUT_MS = 2000;

/**
 * The readiness probe's answer comes from the last completed run of the checks: one older than this starts a
 * new run in the background (the probe does not wait for it).
 */
export const READINESS_REFRESH_MS = 1000;
/** A last run older than this is not believed: the probe waits for a new run (each check bounded by its timeout). */
export const READINESS_MAX_AGE_MS = 10_000;

type CheckEntry = readonly [name: string, required: boolean, result: CheckResult];

/** The dependencies this node uses, each able to say how it is. */
export class HealthRegistry {
  private readonly checks = new Map<string, { check: HealthCheck; required: boolean }>();
  private currentPhase: NodePhase = "starting";
  private last: { readonly entries: readonly CheckEntry[]; readonly at: number } | undefined;
  private refreshing: Promise<readonly CheckEntry[]> | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** starting until every service of the node has started and its channel subscriptions are live. */
  get phase(): NodePhase {
    return this.currentPhase;
  }

  setPhase(phase: NodePhase): void {
    // Checks run while starting saw dependencies not yet connected: the first probe once ready runs them again.
    if (phase !== this.currentPhase) this.last = undefined;
    this.currentPhase = phase;
  }

  register(name: string, check: HealthCheck, options: { required: boolean } = { required: true }): void {
    this.checks.set(name, { check, required: options.required });
  }

  unregister(name: string): void {
    this.checks.delete(name);
  }

  /** Runs every check now (each bounded by its timeout) and reports. */
  async run(): Promise<HealthReport> {
    return this.report(await this.refresh());
  }

  /**
   * The load balancer's probe: cheap whatever the node's load. The phase is read now; the checks' results
   * are those of the last run when it is at most READINESS_MAX_AGE_MS old (one older than
   * READINESS_REFRESH_MS starts a new run in the background), else of a new run.
   */
  async readiness(): Promise<HealthReport> {
    const last = this.last;
    const age = last === undefined ? Infinity : this.now() - last.at;
    if (last === undefined || age > READINESS_MAX_AGE_MS) return this.report(await this.refresh());
    if (age >= READINESS_REFRESH_MS) void this.refresh();
    return this.report(last.entries);
  }

  /** One run of the checks at a time: callers meanwhile share it. */
  private refresh(): Promise<readonly CheckEntry[]> {
    this.refreshing ??= (async () => {
      const phase = this.currentPhase;
      try {
        const entries = await Promise.all(
          [...this.checks].map(async ([name, { check, required }]): Promise<CheckEntry> => [name, required, await runCheck(check)]),
        );
        if (phase === this.currentPhase) this.last = { entries, at: this.now() };
        return entries;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private report(entries: readonly CheckEntry[]): HealthReport {
    let status: HealthReport["status"] = "ok";
    for (const [, required, result] of entries) {
      if (result.status === "down" && required) status = "down";
      else if (result.status !== "ok" && status === "ok") status = "degraded";
    }
    if (this.currentPhase !== "ready") status = this.currentPhase;
    return { status, checks: Object.fromEntries(entries.map(([name, , result]) => [name, result])) };
  }
}

/** Whether a load balancer should send this node traffic. */
export function isServing(report: HealthReport): boolean {
  return report.status === "ok" || report.status === "degraded";
}

/** What anyone may see: the status, and each check's name and status; hosts, paths and error text are for admins and the metrics listener. */
export function publicHealthView(report: HealthReport): HealthReport {
  return {
    status: report.status,
    checks: Object.fromEntries(Object.entries(report.checks).map(([name, check]) => [name, { status: check.status }])),
  };
}

async function runCheck(check: HealthCheck): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(check),
      new Promise<CheckResult>((resolve) => {
        timer = setTimeout(() => resolve({ status: "down", error: `no answer within ${CHECK_TIMEOUT_MS} ms` }), CHECK_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    return { status: "down", error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

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

/** The dependencies this node uses, each able to say how it is. */
export class HealthRegistry {
  private readonly checks = new Map<string, { check: HealthCheck; required: boolean }>();
  private currentPhase: NodePhase = "starting";

  /** starting until every service of the node has started and its channel subscriptions are live. */
  get phase(): NodePhase {
    return this.currentPhase;
  }

  setPhase(phase: NodePhase): void {
    this.currentPhase = phase;
  }

  register(name: string, check: HealthCheck, options: { required: boolean } = { required: true }): void {
    this.checks.set(name, { check, required: options.required });
  }

  unregister(name: string): void {
    this.checks.delete(name);
  }

  async run(): Promise<HealthReport> {
    const entries = await Promise.all(
      [...this.checks].map(async ([name, { check, required }]) => [name, required, await runCheck(check)] as const),
    );
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

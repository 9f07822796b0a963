import type { HealthStatus } from "./db/database";

export interface CheckResult {
  readonly status: HealthStatus;
  readonly [detail: string]: unknown;
}

export type HealthCheck = () => CheckResult | Promise<CheckResult>;

export interface HealthReport {
  /** down when a required check is down; degraded when anything is less than ok. */
  readonly status: HealthStatus;
  readonly checks: Readonly<Record<string, CheckResult>>;
}

const CHECK_TIMEOUT_MS = 2000;

/** The dependencies this node uses, each able to say how it is. */
export class HealthRegistry {
  private readonly checks = new Map<string, { check: HealthCheck; required: boolean }>();

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
    let status: HealthStatus = "ok";
    for (const [, required, result] of entries) {
      if (result.status === "down" && required) status = "down";
      else if (result.status !== "ok" && status === "ok") status = "degraded";
    }
    return { status, checks: Object.fromEntries(entries.map(([name, , result]) => [name, result])) };
  }
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

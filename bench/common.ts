import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";

/** What every benchmark shares: rounding, env options, and a record of the machine and code measured. */
export const PROJECT_ROOT = path.resolve(__dirname, "..");

export const round = (value: number, digits: number): number => Number(value.toFixed(digits));

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const loadAverage1m = (): number => round(os.loadavg()[0] ?? 0, 2);

export function positiveNumberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number (got ${JSON.stringify(raw)})`);
  return value;
}

/** The commit measured and how many files differed from it (a dirty tree is worth knowing about). */
export function codeState(): { commit: string; changedFiles: number } | undefined {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: PROJECT_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const changed = git("status", "--porcelain").split("\n").filter((line) => line.trim() !== "");
    return { commit: git("rev-parse", "HEAD").trim(), changedFiles: changed.length };
  } catch {
    return undefined;
  }
}

/** The machine, for the results file: the same benchmark on another machine is another figure. */
export function machineInfo() {
  const cpus = os.cpus();
  return {
    node: process.version,
    cpuModel: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    totalMemoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((value) => round(value, 2)),
  };
}

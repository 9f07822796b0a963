/**
 * A load round as every benchmark runs it: an unrecorded warm-up, a second of quiet in which the machine's
 * load from other work is read, then the measured round with the machine's load over it.
 */
import { interrupted, progress } from "./common";
import { cpuMark, describeLoad, loadSince, quietWindow } from "./machine";
import type { RoundLoad } from "./machine";

export interface RoundOptions {
  readonly warmupSeconds: number;
  readonly seconds: number;
  /** How long to idle before the measured round, reading the load of other work (default 1 s). */
  readonly quietMs?: number;
}

export interface Measured<F> {
  readonly figures: F;
  readonly machineLoad: RoundLoad;
}

/**
 * Runs `load(warmupSeconds)` unrecorded, idles, then `load(seconds)` measured. `describe` makes the
 * progress line of the figures.
 */
export async function loadRound<F>(
  scope: string,
  label: string,
  options: RoundOptions,
  load: (seconds: number) => Promise<F>,
  describe: (figures: F) => string,
): Promise<Measured<F>> {
  if (options.warmupSeconds > 0) {
    progress(scope, `${label}: warm-up ${options.warmupSeconds} s`);
    await load(options.warmupSeconds);
  }
  if (interrupted()) throw new Error("interrupted");
  const before = await quietWindow(options.quietMs ?? 1000);
  progress(scope, `${label}: measuring ${options.seconds} s (before: ${describeLoad(before)})`);
  const mark = cpuMark();
  const figures = await load(options.seconds);
  const during = loadSince(mark);
  progress(scope, `${label}: ${describe(figures)} (during: ${describeLoad(during, Number.POSITIVE_INFINITY)})`);
  return { figures, machineLoad: { before, during } };
}

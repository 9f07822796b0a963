/**
 * The machine's load around a measured round: the load averages and the share of all cores left idle, read
 * from os.cpus() (the same counters as /proc/stat). The machine may be shared with other work; a figure
 * measured while it was busy is worth less, so every round records its load before and during.
 */
import os from "node:os";
import { delay, round } from "./common";

/** CPU counters of all cores at one moment. */
export interface CpuMark {
  readonly idleMs: number;
  readonly totalMs: number;
  readonly at: number;
}

/** The load over a stretch of time: load averages at its end, and the idle share of all cores over it. */
export interface LoadRecord {
  /** 1, 5 and 15-minute load averages at the end of the stretch. */
  readonly loadAverage: readonly number[];
  /** Share of the machine's CPU time left idle over the stretch, 0..1 (1: nothing ran). */
  readonly cpuIdle: number;
  /** Busy CPU seconds per second over the stretch, all processes (at most the number of cores). */
  readonly busyCores: number;
  readonly seconds: number;
}

/** Load before and during one measured round. */
export interface RoundLoad {
  readonly before: LoadRecord;
  readonly during: LoadRecord;
}

export function cpuMark(): CpuMark {
  let idleMs = 0;
  let totalMs = 0;
  for (const cpu of os.cpus()) {
    const { user, nice, sys, idle, irq } = cpu.times;
    idleMs += idle;
    totalMs += user + nice + sys + idle + irq;
  }
  return { idleMs, totalMs, at: Date.now() };
}

export const loadAverages = (): number[] => os.loadavg().map((value) => round(value, 2));

/** The load from `mark` until now. */
export function loadSince(mark: CpuMark): LoadRecord {
  const now = cpuMark();
  const total = now.totalMs - mark.totalMs;
  const idle = now.idleMs - mark.idleMs;
  const seconds = (now.at - mark.at) / 1000;
  return {
    loadAverage: loadAverages(),
    cpuIdle: total > 0 ? round(idle / total, 3) : 1,
    busyCores: seconds > 0 ? round((total - idle) / 1000 / seconds, 2) : 0,
    seconds: round(seconds, 2),
  };
}

/** Waits `ms` doing nothing and records the machine's load meanwhile: what other work takes before a round. */
export async function quietWindow(ms = 1000): Promise<LoadRecord> {
  const mark = cpuMark();
  await delay(ms);
  return loadSince(mark);
}

/** `load 1.23, idle 45 %`, for progress lines; `(!)` when other work took more than `busyLimit` cores. */
export function describeLoad(record: LoadRecord, busyLimit = 0.3): string {
  const flag = record.busyCores > busyLimit ? " (!)" : "";
  return `load ${record.loadAverage[0] ?? "?"}, idle ${(record.cpuIdle * 100).toFixed(0)} %${flag}`;
}

/**
 * Summarises a V8 .cpuprofile (as `node --cpu-prof` writes it): where the samples fall by package or project
 * directory, and the heaviest functions by self time. A window (from the profile's end) keeps only the
 * samples of a measured round, leaving out start-up and shutdown.
 */
import fs from "node:fs";
import path from "node:path";
import { PROJECT_ROOT, round } from "./common";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  readonly file: string;
  readonly sampledSeconds: number;
  /** Share of the sampled time the thread was not idle. */
  readonly busyShare: number;
  /** Self time by area, as a share of busy time, heaviest first. */
  readonly areas: ReadonlyArray<{ readonly area: string; readonly share: number }>;
  /** Self time by function (`name  area:line`), as a share of busy time, heaviest first. */
  readonly functions: ReadonlyArray<{ readonly frame: string; readonly share: number }>;
}

/** "moleculer", "node:internal/http", "project services/", "(garbage collector)", … */
function area(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  const file = url.replace(/^file:\/\//, "");
  const modules = file.lastIndexOf("/node_modules/");
  if (modules >= 0) {
    const parts = file.slice(modules + "/node_modules/".length).split("/");
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1] ?? ""}` : (parts[0] ?? file);
  }
  if (file.startsWith("node:")) return file.split("/").slice(0, 2).join("/");
  if (file.startsWith(PROJECT_ROOT)) return `project ${path.relative(PROJECT_ROOT, file).split("/")[0] ?? file}`;
  return file;
}

/**
 * With `window`, only the samples between `endOffsetSeconds + seconds` and `endOffsetSeconds` before the last
 * sample count.
 */
export function summariseProfile(file: string, top = 25, window?: { readonly seconds: number; readonly endOffsetSeconds: number }): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const times: number[] = [];
  let at = 0;
  for (const delta of profile.timeDeltas) times.push((at += delta));
  const end = at;
  const from = window === undefined ? -Infinity : end - (window.endOffsetSeconds + window.seconds) * 1e6;
  const to = window === undefined ? Infinity : end - window.endOffsetSeconds * 1e6;

  const selfTime = new Map<number, number>();
  profile.samples.forEach((id, index) => {
    const time = times[index] ?? 0;
    if (time >= from && time <= to) selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  const isIdle = (id: number) => byId.get(id)?.callFrame.functionName === "(idle)";
  const total = [...selfTime.values()].reduce((sum, t) => sum + t, 0);
  const busy = [...selfTime].filter(([id]) => !isIdle(id)).reduce((sum, [, t]) => sum + t, 0);

  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, time] of selfTime) {
    const node = byId.get(id);
    if (node === undefined || isIdle(id)) continue;
    const where = area(node.callFrame);
    byArea.set(where, (byArea.get(where) ?? 0) + time);
    // A project file by its path (tsx runs it transformed, so its line numbers are not the source's).
    const file = node.callFrame.url.replace(/^file:\/\//, "");
    const place = file.startsWith(PROJECT_ROOT) && !file.includes("/node_modules/") ? path.relative(PROJECT_ROOT, file) : `${where}:${node.callFrame.lineNumber + 1}`;
    const name = `${node.callFrame.functionName || "(anonymous)"}  ${place}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + time);
  }
  const share = (time: number) => (busy > 0 ? round(time / busy, 4) : 0);
  const heaviest = (map: Map<string, number>) => [...map].sort((x, y) => y[1] - x[1]).slice(0, top);
  return {
    file,
    sampledSeconds: round(total / 1e6, 2),
    busyShare: total > 0 ? round(busy / total, 4) : 0,
    areas: heaviest(byArea).map(([name, time]) => ({ area: name, share: share(time) })),
    functions: heaviest(byFunction).map(([name, time]) => ({ frame: name, share: share(time) })),
  };
}

const percent = (share: number): string => `${(100 * share).toFixed(1).padStart(5)} %`;

/** The summary as text lines. */
export function formatProfile(summary: ProfileSummary): string[] {
  return [
    `${path.basename(summary.file)}: ${summary.sampledSeconds.toFixed(1)} s sampled, busy ${percent(summary.busyShare)}`,
    "",
    "self time by area (share of busy time)",
    ...summary.areas.map((entry) => `  ${percent(entry.share)}  ${entry.area}`),
    "",
    "heaviest functions by self time (share of busy time)",
    ...summary.functions.map((entry) => `  ${percent(entry.share)}  ${entry.frame}`),
  ];
}

/** The main thread's profile of process `pid` in `dir` (`CPU.<date>.<pid>.0.<n>.cpuprofile`; thread 0). */
export function mainThreadProfile(dir: string, pid: number): string | undefined {
  const name = fs.readdirSync(dir).find((file) => file.endsWith(".cpuprofile") && file.includes(`.${pid}.0.`));
  return name === undefined ? undefined : path.join(dir, name);
}

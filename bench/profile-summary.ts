/**
 * Summarises a V8 .cpuprofile (as written by `node --cpu-prof`, e.g. by `BENCH_CPU_PROF_DIR=… npm run
 * bench:read`): where the samples fall by package or project directory, and the heaviest functions
 * by self time.
 *
 *   npx tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
 */
import fs from "node:fs";
import path from "node:path";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const PROJECT_ROOT = path.resolve(__dirname, "..");

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

function percent(part: number, total: number): string {
  return `${((100 * part) / total).toFixed(1).padStart(5)} %`;
}

function main(): void {
  const [file, topArg] = process.argv.slice(2);
  if (file === undefined) {
    console.error("usage: tsx bench/profile-summary.ts <file.cpuprofile> [top]");
    process.exit(2);
  }
  const top = Number(topArg ?? 25);
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));

  const selfTime = new Map<number, number>();
  profile.samples.forEach((id, index) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));
  const idle = [...selfTime].filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)").reduce((sum, [, t]) => sum + t, 0);
  const total = [...selfTime.values()].reduce((sum, t) => sum + t, 0);
  const busy = total - idle;

  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, time] of selfTime) {
    const node = byId.get(id);
    if (node === undefined || node.callFrame.functionName === "(idle)") continue;
    const where = area(node.callFrame);
    byArea.set(where, (byArea.get(where) ?? 0) + time);
    const name = `${node.callFrame.functionName || "(anonymous)"}  ${where}:${node.callFrame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + time);
  }

  console.log(`${path.basename(file)}: ${(total / 1e6).toFixed(1)} s sampled, busy ${percent(busy, total)}`);
  console.log("\nself time by area (share of busy time)");
  for (const [name, time] of [...byArea].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`  ${percent(time, busy)}  ${name}`);
  console.log("\nheaviest functions by self time (share of busy time)");
  for (const [name, time] of [...byFunction].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`  ${percent(time, busy)}  ${name}`);
}

main();

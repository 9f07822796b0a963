/**
 * Summarises a V8 .cpuprofile (as written by `node --cpu-prof`, e.g. by `BENCH_CPU_PROF_DIR=… npm run
 * bench:read`): where the samples fall by package or project directory, and the heaviest functions
 * by self time.
 *
 *   npx tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
 */
import { formatProfile, summariseProfile } from "./harness/profile";

const [file, topArg] = process.argv.slice(2);
if (file === undefined) {
  console.error("usage: tsx bench/profile-summary.ts <file.cpuprofile> [top]");
  process.exit(2);
}
console.log(formatProfile(summariseProfile(file, Number(topArg ?? 25))).join("\n"));

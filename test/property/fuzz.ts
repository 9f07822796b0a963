/**
 * `npm run fuzz -- --seconds 60`: the property tests of test/property, run from fresh random seeds until the
 * time is up, many more cases than `npm test` runs. A failure is printed with its seed and path; replay it with
 * `npm run fuzz -- --only "<property name>" --seed <seed> --path <path>`, then keep it as a fixed test case.
 */
import { randomInt } from "node:crypto";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { replayParameters } from "./fuzz-parameters";
import type { NamedProperty } from "./fuzz-parameters";
import { PROPERTY_GROUPS } from "./property-groups";

/** Cases per seed: each property gets a fresh seed after this many, so that one slow property does not hold up the rest. */
const RUNS_PER_SEED = 2000;

interface Target {
  readonly label: string;
  readonly named: NamedProperty;
  runs: number;
  seeds: number;
  failed: boolean;
}

function replayCommand(target: Target, seed: number, path: string): string {
  return `npm run fuzz -- --only ${JSON.stringify(target.named.name)} --seed ${seed} --path ${path}`;
}

async function fuzz(targets: Target[], deadline: number): Promise<void> {
  while (Date.now() < deadline && targets.some((target) => !target.failed)) {
    for (const target of targets) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      if (target.failed) continue;
      const seed = randomInt(2 ** 31 - 1);
      const details = await fc.check(target.named.property, { seed, numRuns: RUNS_PER_SEED, interruptAfterTimeLimit: left, markInterruptAsFailure: false });
      target.runs += details.numRuns;
      target.seeds += 1;
      if (details.failed) {
        target.failed = true;
        console.log(`\nFAILED ${target.label}\n  seed ${seed}, path ${details.counterexamplePath}`);
        console.log(`  counterexample: ${fc.stringify(details.counterexample)}`);
        if (details.errorInstance !== null) console.log(`  error: ${String(details.errorInstance)}`);
        console.log(`  replay: ${replayCommand(target, seed, details.counterexamplePath ?? "")}`);
      }
    }
  }
}

async function replay(targets: Target[], seed: number, path: string): Promise<void> {
  for (const target of targets) {
    const details = await fc.check(target.named.property, replayParameters(seed, path));
    target.runs += details.numRuns;
    target.failed = details.failed;
    console.log(`${details.failed ? "FAILED" : "passed"} ${target.label}`);
    if (details.failed) console.log(fc.defaultReportMessage(details) ?? "");
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: "string", default: "60" }, only: { type: "string" }, seed: { type: "string" }, path: { type: "string" } },
  });
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`--seconds must be a positive number, not ${values.seconds}`);
  const targets: Target[] = PROPERTY_GROUPS.flatMap((group) =>
    group.properties.map((named) => ({ label: `${group.subject} › ${named.name}`, named, runs: 0, seeds: 0, failed: false })),
  ).filter((target) => values.only === undefined || target.label.includes(values.only));
  if (targets.length === 0) throw new Error(`no property's name contains ${JSON.stringify(values.only)}`);

  if (values.seed !== undefined) {
    if (values.path === undefined) throw new Error("--seed goes with --path, both as printed by a failure");
    await replay(targets, Number(values.seed), values.path);
  } else {
    console.log(`fuzzing ${targets.length} properties for ${seconds} s`);
    await fuzz(targets, Date.now() + seconds * 1000);
    for (const target of targets) console.log(`${target.failed ? "FAILED" : "ok    "} ${String(target.runs).padStart(9)} cases, ${String(target.seeds).padStart(4)} seeds  ${target.label}`);
  }
  const failures = targets.filter((target) => target.failed).length;
  console.log(`${targets.length - failures} passed, ${failures} failed`);
  process.exitCode = failures > 0 ? 1 : 0;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 2;
});

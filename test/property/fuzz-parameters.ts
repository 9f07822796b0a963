/**
 * How the properties under test/property run. In `npm test` every property runs a bounded number of
 * cases from one fixed seed, so a run is repeatable and quick; `npm run fuzz` (fuzz.ts) runs the same
 * properties for as long as it is given, from fresh seeds, and prints the seed and path of any failure
 * so that it can be replayed here (`replayParameters`).
 */
import type fc from "fast-check";

/** The seed of every property in `npm test`. */
export const TEST_SEED = 20_261_204;
/** Cases per property in `npm test`, unless a property asks for fewer (one that is slow per case). */
export const TEST_RUNS = 300;

export interface NamedProperty {
  readonly name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each property has its own tuple of generated values
  readonly property: fc.IRawProperty<any>;
  /** Cases in `npm test`, when fewer than TEST_RUNS keep it quick. */
  readonly runs?: number;
}

export interface PropertyGroup {
  /** The module whose parsing the properties exercise. */
  readonly subject: string;
  readonly properties: readonly NamedProperty[];
}

export function testParameters(property: NamedProperty): fc.Parameters<unknown> {
  return { seed: TEST_SEED, numRuns: property.runs ?? TEST_RUNS };
}

/** Runs a failure printed by `npm run fuzz` again, exactly (its seed and path). */
export function replayParameters(seed: number, path: string): fc.Parameters<unknown> {
  return { seed, path, numRuns: 1 };
}

import { nextInRotation, ReplicaLagTracker, RoundRobin } from "../../lib/db/replica-rotation";

const thresholds = { maxLagSeconds: 5, rejoinLagSeconds: 2.5 };
const up = (lagSeconds: number | null) => ({ reachable: true, lagSeconds });

describe("nextInRotation", () => {
  it("takes an unreachable replica out, whatever its last lag", () => {
    expect(nextInRotation(true, { reachable: false, lagSeconds: 0 }, thresholds)).toBe(false);
    expect(nextInRotation(false, { reachable: false, lagSeconds: 0 }, thresholds)).toBe(false);
  });

  it("takes a replica with unknown lag out", () => {
    expect(nextInRotation(true, up(null), thresholds)).toBe(false);
  });

  it("keeps a serving replica up to the maximum lag and takes it out just above", () => {
    expect(nextInRotation(true, up(0), thresholds)).toBe(true);
    expect(nextInRotation(true, up(4), thresholds)).toBe(true);
    expect(nextInRotation(true, up(5), thresholds)).toBe(true);
    expect(nextInRotation(true, up(5.001), thresholds)).toBe(false);
  });

  it("lets a replica that left rejoin only at or below the rejoin lag (hysteresis)", () => {
    expect(nextInRotation(false, up(5), thresholds)).toBe(false);
    expect(nextInRotation(false, up(3), thresholds)).toBe(false);
    expect(nextInRotation(false, up(2.5), thresholds)).toBe(true);
    expect(nextInRotation(false, up(0), thresholds)).toBe(true);
  });

  it("does not flap while the lag hovers around the maximum", () => {
    let inRotation = true;
    const history: boolean[] = [];
    for (const lag of [1, 6, 4.5, 5, 3, 6, 2.5, 4, 5]) {
      inRotation = nextInRotation(inRotation, up(lag), thresholds);
      history.push(inRotation);
    }
    expect(history).toEqual([true, false, false, false, false, false, true, true, true]);
  });
});

describe("ReplicaLagTracker", () => {
  const T0 = 1_700_000_000_000;

  /** Checks the replica against its pending positions, treating those in `appliedSet` as applied. */
  function check(tracker: ReplicaLagTracker, id: string, appliedSet: ReadonlySet<string>, now: number): number {
    const applied = tracker.positionsToCheck(id).map((position) => appliedSet.has(position));
    return tracker.recordApplied(id, applied, now);
  }

  it("reports no lag while the primary is idle, however long", () => {
    const tracker = new ReplicaLagTracker(["r1"]);
    tracker.observePrimary("bin.1:100", T0);
    expect(check(tracker, "r1", new Set(["bin.1:100"]), T0 + 10)).toBe(0);
    for (let i = 1; i <= 100; i++) tracker.observePrimary("bin.1:100", T0 + i * 1000);
    expect(tracker.positionsToCheck("r1")).toEqual([]);
    expect(check(tracker, "r1", new Set(), T0 + 3_600_000)).toBe(0);
  });

  it("shows a lag of about t/1000 s for a replica that has not applied a position observed t ms ago", () => {
    const tracker = new ReplicaLagTracker(["r1"]);
    tracker.observePrimary("bin.1:100", T0);
    expect(check(tracker, "r1", new Set(), T0 + 7_500)).toBeCloseTo(7.5, 5);
    expect(check(tracker, "r1", new Set(), T0 + 20_000)).toBeCloseTo(20, 5);
  });

  it("clears the lag once the replica applies what it was missing", () => {
    const tracker = new ReplicaLagTracker(["r1"]);
    tracker.observePrimary("bin.1:100", T0);
    tracker.observePrimary("bin.1:200", T0 + 1000);
    expect(check(tracker, "r1", new Set(), T0 + 9000)).toBeCloseTo(9, 5);
    expect(check(tracker, "r1", new Set(["bin.1:100", "bin.1:200"]), T0 + 9500)).toBe(0);
    expect(tracker.positionsToCheck("r1")).toEqual([]);
  });

  it("measures from the oldest position still missing after a partial catch-up", () => {
    const tracker = new ReplicaLagTracker(["r1"]);
    tracker.observePrimary("p1", T0);
    tracker.observePrimary("p2", T0 + 2000);
    tracker.observePrimary("p3", T0 + 4000);
    expect(check(tracker, "r1", new Set(["p1"]), T0 + 10_000)).toBeCloseTo(8, 5);
    expect(tracker.positionsToCheck("r1")).toEqual(["p2", "p3"]);
  });

  it("does not re-add an unchanged position (its age stays from when it was first seen)", () => {
    const tracker = new ReplicaLagTracker(["r1"]);
    tracker.observePrimary("p1", T0);
    tracker.observePrimary("p1", T0 + 5000);
    tracker.observePrimary("p1", T0 + 9000);
    expect(tracker.positionsToCheck("r1")).toEqual(["p1"]);
    expect(check(tracker, "r1", new Set(), T0 + 10_000)).toBeCloseTo(10, 5);
  });

  it("ignores an empty position", () => {
    const tracker = new ReplicaLagTracker(["r1"]);
    tracker.observePrimary("", T0);
    expect(tracker.positionsToCheck("r1")).toEqual([]);
  });

  it("tracks each replica separately", () => {
    const tracker = new ReplicaLagTracker(["r1", "r2"]);
    tracker.observePrimary("p1", T0);
    expect(check(tracker, "r1", new Set(["p1"]), T0 + 6000)).toBe(0);
    expect(check(tracker, "r2", new Set(), T0 + 6000)).toBeCloseTo(6, 5);
    expect(tracker.positionsToCheck("r1")).toEqual([]);
    expect(tracker.positionsToCheck("r2")).toEqual(["p1"]);
  });

  it("keeps positions observed while a check was in flight", () => {
    const tracker = new ReplicaLagTracker(["r1"]);
    tracker.observePrimary("p1", T0);
    const applied = tracker.positionsToCheck("r1").map(() => true);
    tracker.observePrimary("p2", T0 + 1000);
    expect(tracker.recordApplied("r1", applied, T0 + 4000)).toBeCloseTo(3, 5);
    expect(tracker.positionsToCheck("r1")).toEqual(["p2"]);
  });

  it("bounds memory but keeps the oldest position, so a stuck replica's lag is not under-reported", () => {
    const tracker = new ReplicaLagTracker(["r1"]);
    for (let i = 0; i < 1000; i++) tracker.observePrimary(`p${i}`, T0 + i * 1000);
    const pending = tracker.positionsToCheck("r1");
    expect(pending.length).toBeLessThanOrEqual(64);
    expect(pending[0]).toBe("p0");
    expect(pending[pending.length - 1]).toBe("p999");
    expect(check(tracker, "r1", new Set(), T0 + 1_000_000)).toBeCloseTo(1000, 5);
  });

  it("throws for a replica it was not told about", () => {
    const tracker = new ReplicaLagTracker(["r1"]);
    expect(() => tracker.recordApplied("r9", [], T0)).toThrow("unknown replica r9");
  });

  it("never reports a negative lag when the clock goes backwards", () => {
    const tracker = new ReplicaLagTracker(["r1"]);
    tracker.observePrimary("p1", T0);
    expect(check(tracker, "r1", new Set(), T0 - 5000)).toBe(0);
  });
});

describe("RoundRobin", () => {
  it("returns undefined when there is no candidate", () => {
    expect(new RoundRobin<string>().pick([])).toBeUndefined();
  });

  it("cycles through the candidates in order", () => {
    const rr = new RoundRobin<string>();
    const replicas = ["r1", "r2", "r3"];
    expect(Array.from({ length: 7 }, () => rr.pick(replicas))).toEqual(["r1", "r2", "r3", "r1", "r2", "r3", "r1"]);
  });

  it("spreads reads evenly", () => {
    const rr = new RoundRobin<string>();
    const replicas = ["r1", "r2", "r3"];
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const chosen = rr.pick(replicas) as string;
      counts.set(chosen, (counts.get(chosen) ?? 0) + 1);
    }
    expect(Object.fromEntries(counts)).toEqual({ r1: 1000, r2: 1000, r3: 1000 });
  });

  it("keeps serving only current candidates when the rotation shrinks", () => {
    const rr = new RoundRobin<string>();
    rr.pick(["r1", "r2", "r3"]);
    const picks = Array.from({ length: 4 }, () => rr.pick(["r1", "r3"]));
    expect(new Set(picks)).toEqual(new Set(["r1", "r3"]));
    expect(picks.filter((p) => p === "r1")).toHaveLength(2);
  });
});

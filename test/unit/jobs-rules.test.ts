import { retryDelayMs } from "../../lib/jobs/backoff";
import { canTransition, deadlineOutlivesHeartbeats, decideClaim, heartbeatIntervalMs } from "../../lib/jobs/job-state";
import { MemoryLeaseLock } from "../../lib/jobs/lease-lock";
import { addsToRow, ProgressThrottle } from "../../lib/jobs/progress-throttle";
import { OnceLog, planReconcile } from "../../lib/jobs/reconcile";

describe("retryDelayMs", () => {
  const options = { baseDelayMs: 1000, maxDelayMs: 10_000 };
  it("doubles per attempt, capped, with half of it fixed", () => {
    expect([1, 2, 3, 4, 5, 9].map((attempt) => retryDelayMs(attempt, options, () => 0))).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
    expect([1, 2, 3, 4, 5].map((attempt) => retryDelayMs(attempt, options, () => 1))).toEqual([1000, 2000, 4000, 8000, 10_000]);
  });
});

describe("decideClaim", () => {
  const options = { maxAttempts: 3, staleAfterMs: 1000 };
  it("starts an uploaded item and counts the attempt", () => {
    expect(decideClaim({ status: "uploaded", attempts: 0, updatedAt: 0 }, 10, options)).toEqual({ action: "start", attempt: 1 });
  });
  it("skips finished items unless forced", () => {
    expect(decideClaim({ status: "ready", attempts: 1, updatedAt: 0 }, 10, options)).toEqual({ action: "skip", why: "finished" });
    expect(decideClaim({ status: "failed", attempts: 3, updatedAt: 0 }, 10, { ...options, force: true })).toEqual({ action: "start", attempt: 1 });
  });
  it("leaves a live worker's item alone, takes over a stale one", () => {
    expect(decideClaim({ status: "processing", attempts: 1, updatedAt: 500 }, 1000, options)).toEqual({ action: "skip", why: "in_progress" });
    expect(decideClaim({ status: "processing", attempts: 1, updatedAt: 0 }, 1000, options)).toEqual({ action: "start", attempt: 2 });
  });
  it("gives the item back to the claim that holds it when it asks again (its first answer was lost), and to no other", () => {
    const held = { status: "processing" as const, attempts: 1, updatedAt: 900, claimToken: "claim-a" };
    expect(decideClaim(held, 1000, { ...options, token: "claim-a" })).toEqual({ action: "start", attempt: 1, again: true });
    expect(decideClaim(held, 1000, { ...options, token: "claim-b" })).toEqual({ action: "skip", why: "in_progress" });
    expect(decideClaim(held, 1000, options)).toEqual({ action: "skip", why: "in_progress" });
  });
  it("refuses a claim asked again after its attempt ended, and answers finished items as finished", () => {
    expect(decideClaim({ status: "uploaded", attempts: 1, updatedAt: 900, claimToken: "claim-a" }, 1000, { ...options, token: "claim-a" })).toEqual({
      action: "skip",
      why: "claim_ended",
    });
    expect(decideClaim({ status: "uploaded", attempts: 1, updatedAt: 900, claimToken: "claim-a" }, 1000, { ...options, token: "claim-b" })).toEqual({
      action: "start",
      attempt: 2,
    });
    expect(decideClaim({ status: "ready", attempts: 1, updatedAt: 900, claimToken: "claim-a" }, 1000, { ...options, token: "claim-a" })).toEqual({
      action: "skip",
      why: "finished",
    });
  });
  it("exhausts an item whose attempts are used up", () => {
    expect(decideClaim({ status: "processing", attempts: 3, updatedAt: 0 }, 5000, options)).toEqual({ action: "exhaust", attempts: 3 });
  });
  it("allows only the machine's transitions", () => {
    expect(canTransition("uploaded", "processing")).toBe(true);
    expect(canTransition("processing", "ready")).toBe(true);
    expect(canTransition("uploaded", "ready")).toBe(false);
    expect(canTransition("ready", "failed")).toBe(false);
  });
});

describe("heartbeatIntervalMs", () => {
  it("beats every quarter of the deadline, at most once a second, and within what a timer can wait", () => {
    expect(heartbeatIntervalMs(600)).toBe(150_000);
    expect(heartbeatIntervalMs(2)).toBe(1000);
    // A period beyond setInterval's 24.8 days would fire every millisecond instead.
    expect(heartbeatIntervalMs(365 * 24 * 3600)).toBe(2 ** 31 - 1);
  });
  it("leaves at least two beats per deadline from 2 s up, and not below", () => {
    expect([1, 2, 3, 600, 365 * 24 * 3600].map((deadline) => deadlineOutlivesHeartbeats(deadline))).toEqual([false, true, true, true, true]);
  });
});

describe("ProgressThrottle", () => {
  it("sends at most one report per interval per item, every stage change at once, never a repeat", () => {
    let now = 0;
    const throttle = new ProgressThrottle(250, () => now);
    const sent = (stage: "processing" | "storing" | "ready", percent: number, mediaId = "a") => throttle.admit({ mediaId, stage, percent });
    expect(sent("processing", 0)).toBe(true);
    now = 100;
    expect(sent("processing", 10)).toBe(false);
    expect(sent("processing", 10, "b")).toBe(true);
    now = 260;
    expect(sent("processing", 20)).toBe(true);
    now = 600;
    expect(sent("processing", 20)).toBe(false);
    now = 610;
    expect(sent("storing", 90)).toBe(true);
    expect(sent("ready", 100)).toBe(true);
  });
});

describe("addsToRow", () => {
  it("records progress between the claim and the completion, not what those two write themselves", () => {
    expect(addsToRow("processing", 0)).toBe(false);
    expect(addsToRow("processing", 1)).toBe(true);
    expect(addsToRow("processing", 100)).toBe(true);
    expect(addsToRow("storing", 0)).toBe(true);
    expect(addsToRow("storing", 100)).toBe(false);
    expect(addsToRow("queued", 0)).toBe(false);
    expect(addsToRow("ready", 100)).toBe(false);
    expect(addsToRow("failed", 100)).toBe(false);
  });
});

describe("planReconcile", () => {
  const row = (id: string, kind: string, status: string, updatedAt: number) => ({ id, ownerId: "o", kind, status, updatedAt });
  it("re-enqueues stuck rows of kinds with a processor and only counts the others", () => {
    const plan = planReconcile(
      [row("a", "image", "uploaded", 0), row("b", "image", "processing", 0), row("c", "image", "uploaded", 950), row("d", "video", "uploaded", 0), row("e", "image", "ready", 0)],
      1000,
      { deadlineMs: 100, kinds: new Set(["image"]) },
    );
    expect(plan.requeue.map((r) => r.id)).toEqual(["a", "b"]);
    expect(plan.orphaned).toEqual([]);
    expect([...plan.waiting]).toEqual([["video", 1]]);
  });
  it("takes the sole worker's items left `processing` as orphans, to be put back before they are re-enqueued", () => {
    const rows = [row("a", "image", "uploaded", 990), row("b", "image", "processing", 999), row("c", "video", "processing", 999)];
    const plan = planReconcile(rows, 1000, { deadlineMs: 0, kinds: new Set(["image"]), runningAreOrphans: true });
    expect({ requeue: plan.requeue.map((r) => r.id), orphaned: plan.orphaned.map((r) => r.id) }).toEqual({ requeue: ["a", "b"], orphaned: ["b"] });
  });
  it("logs a waiting kind once", () => {
    const once = new OnceLog();
    expect([once.first("video"), once.first("video")]).toEqual([true, false]);
  });
});

describe("MemoryLeaseLock", () => {
  it("is held by one at a time, until released or the lease ends", async () => {
    const lock = new MemoryLeaseLock();
    const release = await lock.tryAcquire(10_000);
    expect(release).toBeDefined();
    expect(await lock.tryAcquire(10_000)).toBeUndefined();
    await release?.();
    expect(await lock.tryAcquire(1)).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await lock.tryAcquire(1)).toBeDefined();
  });
});

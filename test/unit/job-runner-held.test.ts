/**
 * A worker whose call recording a claimed item's outcome fails (a broker call timed out under load): the item must
 * not stay `processing` until the reconciler's deadline. The row and the claim rules are the real ones
 * (lib/jobs/job-state.ts); the media service and the channel are an in-memory stand-in.
 */
import { decideClaim } from "../../lib/jobs/job-state";
import type { MediaStatus } from "../../lib/jobs/job-state";
import { runJob } from "../../lib/jobs/job-runner";
import type { JobPorts, RunnerOptions } from "../../lib/jobs/job-runner";
import type { JobMessage, ProcessorRegistry } from "../../lib/jobs/processor";

const OPTIONS: RunnerOptions = { maxAttempts: 3, heartbeatMs: 60_000, baseDelayMs: 10, maxDelayMs: 20 };
const STALE_AFTER_MS = 600_000;
const MESSAGE: JobMessage = { id: "m1", ownerId: "o1", kind: "image" };
const PROCESSORS: ProcessorRegistry = { image: async () => ({ width: 10, height: 10 }) };

/** One media row and the worker's ports onto it; `failNext` makes the next calls of a port throw. */
function stand(): { row: { status: MediaStatus; attempts: number; updatedAt: number }; failNext: Record<"complete" | "release", number>; ports: JobPorts } {
  const row = { status: "uploaded" as MediaStatus, attempts: 0, updatedAt: 0 };
  const failNext = { complete: 0, release: 0 };
  const state = { row, failNext, ports: undefined as unknown as JobPorts };
  const timedOut = (port: "complete" | "release") => {
    if (failNext[port] === 0) return false;
    failNext[port]--;
    return true;
  };
  state.ports = {
    async claim() {
      const decision = decideClaim(row, Date.now(), { maxAttempts: OPTIONS.maxAttempts, staleAfterMs: STALE_AFTER_MS });
      if (decision.action === "start") Object.assign(row, { status: "processing", attempts: decision.attempt, updatedAt: Date.now() });
      return { decision, row: { ownerId: "o1", kind: "image", mime: "image/jpeg", originalKey: "media/m1/original" } };
    },
    async complete() {
      if (timedOut("complete")) throw new Error("Request timed out when calling 'media.completeProcessing'");
      if (row.status === "processing") row.status = "ready";
    },
    async fail() {
      row.status = "failed";
    },
    async release() {
      if (timedOut("release")) throw new Error("Request timed out when calling 'media.releaseProcessing'");
      if (row.status === "processing") Object.assign(row, { status: "uploaded", updatedAt: Date.now() });
    },
    async handBack() {
      row.status = "uploaded";
    },
    async republish() {},
    async deadLetter() {},
    async heartbeat() {},
    progress() {},
    async openContext() {
      return {
        context: { workDir: "/nonexistent", downloadOriginal: async () => "/nonexistent/original", reportProgress() {}, saveVariants: async () => {}, signal: new AbortController().signal },
        cleanup: async () => {},
      };
    },
    sleep: async () => {},
    log() {},
  };
  return state;
}

describe("a claimed job whose outcome could not be recorded at the first call", () => {
  it("records `ready` once the completion call goes through, instead of leaving the item `processing` for a redelivery to skip", async () => {
    const { row, failNext, ports } = stand();
    failNext.complete = 1;
    expect(await runJob(MESSAGE, PROCESSORS, ports, OPTIONS)).toBe("ready");
    expect(row.status).toBe("ready");
  });

  it("puts a failed attempt back to `uploaded` and republishes it once the release call goes through", async () => {
    const { row, failNext, ports } = stand();
    failNext.release = 1;
    const failing: ProcessorRegistry = {
      image: async () => {
        throw new Error("sharp: out of memory");
      },
    };
    expect(await runJob(MESSAGE, failing, ports, OPTIONS)).toBe("retry");
    expect(row).toMatchObject({ status: "uploaded", attempts: 1 });
  });

  it("gives up after JOB_MAX_ATTEMPTS calls, so that the channel redelivers the message (the reconciler still watches the row)", async () => {
    const { row, failNext, ports } = stand();
    failNext.complete = OPTIONS.maxAttempts;
    await expect(runJob(MESSAGE, PROCESSORS, ports, OPTIONS)).rejects.toThrow(/timed out/);
    expect(row.status).toBe("processing");
  });
});

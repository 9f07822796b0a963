/**
 * A worker whose call claiming an item, or recording a claimed item's outcome, fails (a broker call timed out under
 * load, possibly after the media service made the change): the item must not stay `processing` until the
 * reconciler's deadline. The row and the claim rules are the real ones
 * (lib/jobs/job-state.ts); the media service and the channel are an in-memory stand-in.
 */
import { UnavailableError } from "../../lib/errors";
import { decideClaim } from "../../lib/jobs/job-state";
import type { MediaStatus } from "../../lib/jobs/job-state";
import { runJob } from "../../lib/jobs/job-runner";
import type { JobPorts, RunnerOptions } from "../../lib/jobs/job-runner";
import type { JobMessage, ProcessorRegistry } from "../../lib/jobs/processor";

const OPTIONS: RunnerOptions = { maxAttempts: 3, heartbeatMs: 60_000, baseDelayMs: 10, maxDelayMs: 20 };
const STALE_AFTER_MS = 600_000;
const MESSAGE: JobMessage = { id: "m1", ownerId: "o1", kind: "image" };
const PROCESSORS: ProcessorRegistry = { image: async () => ({ width: 10, height: 10 }) };

type Row = { status: MediaStatus; attempts: number; updatedAt: number; claimToken: string | null };
type FailingPort = "claim" | "complete" | "release";

/**
 * One media row and the worker's ports onto it; `failNext` makes the next calls of a port throw. A failing claim is
 * recorded first and only its answer lost, as when the call times out after the media service made it.
 */
function stand(): { row: Row; failNext: Record<FailingPort, number>; claims: string[]; ports: JobPorts } {
  const row: Row = { status: "uploaded", attempts: 0, updatedAt: 0, claimToken: null };
  const failNext = { claim: 0, complete: 0, release: 0 };
  const claims: string[] = [];
  const state = { row, failNext, claims, ports: undefined as unknown as JobPorts };
  const timedOut = (port: FailingPort) => {
    if (failNext[port] === 0) return false;
    failNext[port]--;
    return true;
  };
  state.ports = {
    async claim(_mediaId, token) {
      claims.push(token);
      const decision = decideClaim(row, Date.now(), { maxAttempts: OPTIONS.maxAttempts, staleAfterMs: STALE_AFTER_MS, token });
      if (decision.action === "start" && !decision.again) Object.assign(row, { status: "processing", attempts: decision.attempt, updatedAt: Date.now(), claimToken: token });
      if (timedOut("claim")) throw new Error("Request timed out when calling 'media.claimProcessing'");
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
    async handBack(_mediaId, token) {
      if (row.status === "processing" && row.claimToken === token) Object.assign(row, { status: "uploaded", attempts: row.attempts - 1 });
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
    knownOutage: () => undefined,
  };
  return state;
}

describe("a claim whose answer was lost after it was recorded", () => {
  it("is asked again with the same token and the job runs once, its attempt counted once", async () => {
    const { row, failNext, claims, ports } = stand();
    failNext.claim = 1;
    expect(await runJob(MESSAGE, PROCESSORS, ports, OPTIONS)).toBe("ready");
    expect(row).toMatchObject({ status: "ready", attempts: 1 });
    expect(claims).toHaveLength(2);
    expect(new Set(claims).size).toBe(1);
  });

  it("is given back when no answer ever comes, so that the redelivered message takes the item instead of skipping it", async () => {
    const { row, failNext, claims, ports } = stand();
    failNext.claim = OPTIONS.maxAttempts;
    await expect(runJob(MESSAGE, PROCESSORS, ports, OPTIONS)).rejects.toThrow(/timed out/);
    expect(row).toMatchObject({ status: "uploaded", attempts: 0 });
    expect(await runJob(MESSAGE, PROCESSORS, ports, OPTIONS)).toBe("ready");
    expect(row).toMatchObject({ status: "ready", attempts: 1 });
    expect(new Set(claims).size).toBe(2);
  });

  it("does not take an item another worker holds: the job is skipped, and giving up leaves that worker's claim alone", async () => {
    const { row, failNext, ports } = stand();
    Object.assign(row, { status: "processing", attempts: 1, updatedAt: Date.now(), claimToken: "another-worker" });
    expect(await runJob(MESSAGE, PROCESSORS, ports, OPTIONS)).toBe("skipped");
    failNext.claim = OPTIONS.maxAttempts;
    await expect(runJob(MESSAGE, PROCESSORS, ports, OPTIONS)).rejects.toThrow(/timed out/);
    expect(row).toMatchObject({ status: "processing", attempts: 1, claimToken: "another-worker" });
  });
});

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

describe("a job whose dependency is out of reach (the file store down)", () => {
  const storeDown: ProcessorRegistry = {
    image: async () => {
      throw new UnavailableError("File storage cannot be reached right now; try again shortly.");
    },
  };

  it("is handed back uncounted and published again, however many times it happens, instead of failing the item", async () => {
    const { row, ports } = stand();
    const republished: JobMessage[] = [];
    ports.republish = async (message) => {
      republished.push(message);
    };
    for (let round = 0; round < OPTIONS.maxAttempts + 2; round++) {
      expect(await runJob(MESSAGE, storeDown, ports, OPTIONS)).toBe("retry");
      expect(row).toMatchObject({ status: "uploaded", attempts: 0 });
    }
    expect(republished).toHaveLength(OPTIONS.maxAttempts + 2);
    // Back: the next run makes it ready, as its first counted attempt.
    expect(await runJob(MESSAGE, PROCESSORS, ports, OPTIONS)).toBe("ready");
    expect(row).toMatchObject({ status: "ready", attempts: 1 });
  });

  it("waits without claiming while the store is already known to be out of reach: the item never shows `processing`", async () => {
    const { row, claims, ports } = stand();
    const statuses: MediaStatus[] = [];
    const republished: JobMessage[] = [];
    ports.progress = () => statuses.push(row.status);
    ports.republish = async (message) => {
      republished.push(message);
    };
    ports.knownOutage = () => "file storage: Error: connect ECONNREFUSED 127.0.0.1:9000";
    for (let round = 0; round < OPTIONS.maxAttempts + 2; round++) expect(await runJob(MESSAGE, PROCESSORS, ports, OPTIONS)).toBe("retry");
    expect({ row, claims, statuses, republished: republished.length }).toEqual({
      row: { status: "uploaded", attempts: 0, updatedAt: 0, claimToken: null },
      claims: [],
      statuses: [],
      republished: OPTIONS.maxAttempts + 2,
    });
    ports.knownOutage = () => undefined;
    expect(await runJob(MESSAGE, PROCESSORS, ports, OPTIONS)).toBe("ready");
    expect(row).toMatchObject({ status: "ready", attempts: 1 });
  });

  it("counts an unavailable answer from another node the same way (a Moleculer error with status 503 and type unavailable)", async () => {
    const { row, ports } = stand();
    const remote: ProcessorRegistry = {
      image: async () => {
        throw Object.assign(new Error("The media database cannot accept changes right now"), { code: 503, type: "unavailable" });
      },
    };
    expect(await runJob(MESSAGE, remote, ports, OPTIONS)).toBe("retry");
    expect(row).toMatchObject({ status: "uploaded", attempts: 0 });
  });

  it("still spends an attempt on any other failure", async () => {
    const { row, ports } = stand();
    const broken: ProcessorRegistry = {
      image: async () => {
        throw Object.assign(new Error("Internal error"), { code: 500, type: "internal" });
      },
    };
    expect(await runJob(MESSAGE, broken, ports, OPTIONS)).toBe("retry");
    expect(row).toMatchObject({ status: "uploaded", attempts: 1 });
  });
});

/**
 * How many job messages one worker node holds. JetStream pushes a queue group's messages to its
 * members at random, whatever each can run; the handler keeps at most one running and one waiting
 * per slot and hands the rest back (nak with a delay) for another member. The in-process adapter of
 * embedded mode has no such message: there the node queues every job, as before. A waiting job's
 * original is fetched while it waits, so that a slot that frees starts computing at once.
 *
 * The channel handler is called directly, with the broker calls of the job runner answered here.
 */
import { Readable } from "node:stream";
import type { Service } from "moleculer";
import { parseSettings } from "../../config/settings";
import type { Processor } from "../../lib/jobs/processor";
import type { Runtime } from "../../lib/runtime";
import { MEDIA_JOBS_CHANNEL } from "../../lib/service-contracts";
import { processingService } from "../../services/processing.service";

type Handler = (this: Service, message: { id: string; ownerId: string; kind: string }, raw?: unknown) => Promise<void>;

interface Fixture {
  readonly handler: (id: string, raw?: unknown, kind?: string) => Promise<void>;
  readonly started: string[];
  /** Object keys read from storage, in order: the originals fetched. */
  readonly fetched: string[];
  /** Lets every job that started (and every later one) finish. */
  release(): void;
}

/** `storing: true`: the processor stores its (no) variants first, then waits for release() as if storing took long. */
function fixture(env: Record<string, string>, options: { storing?: boolean } = {}): Fixture {
  const settings = parseSettings({ SHOAL_DATA_DIR: "/tmp/shoal-unit-processing-hold", ...env });
  const fetched: string[] = [];
  const storage = {
    get: (key: string) => {
      fetched.push(key);
      return Promise.resolve({ body: Readable.from([Buffer.from(`original ${key}`)]) });
    },
  };
  const runtime = { settings, redis: undefined, storage } as unknown as Runtime;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const started: string[] = [];
  const image: Processor = async (job, context) => {
    started.push(job.mediaId);
    if (options.storing) await context.saveVariants([]);
    await gate;
    return {};
  };
  const schema = processingService(runtime, { image });
  const channel = (schema.channels as Record<string, { handler: Handler }>)[MEDIA_JOBS_CHANNEL];
  if (channel === undefined) throw new Error("no job channel");
  const broker = {
    call: (action: string, params: { id: string }) =>
      Promise.resolve(
        action === "media.claimProcessing"
          ? { decision: { action: "start", attempt: 1 }, row: { ownerId: "owner", kind: "image", mime: "image/png", originalKey: `original/${params.id}` } }
          : {},
      ),
    emit: () => Promise.resolve(),
  };
  const service = { broker, logger: { info: () => undefined, warn: () => undefined, error: () => undefined } } as unknown as Service;
  return {
    handler: (id, raw, kind = "image") => channel.handler.call(service, { id, ownerId: "owner", kind }, raw),
    started,
    fetched,
    release: () => release(),
  };
}

function jetStreamMessage() {
  return { nak: jest.fn<void, [number?]>(), working: jest.fn<void, []>() };
}

/** Waits until `count` jobs have started (a job starts after real I/O: its work directory is made first). */
async function startedCount(started: string[], count: number): Promise<void> {
  for (let waited = 0; started.length < count; waited += 10) {
    if (waited > 10_000) throw new Error(`only ${started.length} of ${count} jobs started`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test("a JetStream worker with one slot holds two jobs (one running, one waiting) and hands the others back", async () => {
  const { handler, started, release } = fixture({ WORKER_CONCURRENCY: "1" });
  const messages = Array.from({ length: 5 }, () => jetStreamMessage());
  const handled = messages.map((raw, index) => handler(`m${index}`, raw));
  await startedCount(started, 1);
  expect(started).toEqual(["m0"]);
  // The three beyond the limit were handed back at once, with a redelivery delay within the bounds.
  await Promise.all(handled.slice(2));
  for (const raw of messages.slice(2)) {
    expect(raw.nak).toHaveBeenCalledTimes(1);
    const delay = raw.nak.mock.calls[0]?.[0] ?? 0;
    expect(delay).toBeGreaterThanOrEqual(50);
    expect(delay).toBeLessThanOrEqual(1000);
  }
  // The two held ones were told to JetStream as being worked on, and never handed back.
  for (const raw of messages.slice(0, 2)) {
    expect(raw.nak).not.toHaveBeenCalled();
    expect(raw.working).toHaveBeenCalled();
  }
  release();
  await Promise.all(handled.slice(0, 2));
  expect(started).toEqual(["m0", "m1"]);
});

test("the waiting job's original is fetched while the slot is busy, and it starts when the slot frees", async () => {
  const { handler, started, fetched, release } = fixture({ WORKER_CONCURRENCY: "1" });
  const handled = [handler("m0", jetStreamMessage()), handler("m1", jetStreamMessage())];
  await startedCount(started, 1);
  for (let waited = 0; fetched.length < 2 && waited < 10_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  expect([...fetched].sort()).toEqual(["original/m0", "original/m1"]);
  expect(started).toEqual(["m0"]);
  release();
  await Promise.all(handled);
  expect(started).toEqual(["m0", "m1"]);
});

test("a job storing its variants has left its slot: the next job runs meanwhile", async () => {
  const { handler, started, release } = fixture({ WORKER_CONCURRENCY: "1" }, { storing: true });
  const handled = [handler("m0", jetStreamMessage()), handler("m1", jetStreamMessage())];
  await startedCount(started, 2);
  expect(started).toEqual(["m0", "m1"]);
  release();
  await Promise.all(handled);
});

test("the limit follows WORKER_CONCURRENCY: two slots hold four", async () => {
  const { handler, started, release } = fixture({ WORKER_CONCURRENCY: "2" });
  const messages = Array.from({ length: 6 }, () => jetStreamMessage());
  const handled = messages.map((raw, index) => handler(`m${index}`, raw));
  await startedCount(started, 2);
  // Two slots: the two run at once, so either may start first.
  expect([...started].sort()).toEqual(["m0", "m1"]);
  expect(messages.map((raw) => raw.nak.mock.calls.length)).toEqual([0, 0, 0, 0, 1, 1]);
  release();
  await Promise.all(handled);
  expect([...started].sort()).toEqual(["m0", "m1", "m2", "m3"]);
});

test("embedded (no JetStream message): every job is queued on the node, none handed back", async () => {
  const { handler, started, release } = fixture({ WORKER_CONCURRENCY: "1" });
  const handled = Array.from({ length: 4 }, (_, index) => handler(`m${index}`, { payload: {}, headers: {} }));
  await startedCount(started, 1);
  expect(started).toEqual(["m0"]);
  release();
  await Promise.all(handled);
  expect(started).toEqual(["m0", "m1", "m2", "m3"]);
});

test("a job of a kind this node does not process is answered at once, even when every slot is taken", async () => {
  const { handler, started, release } = fixture({ WORKER_CONCURRENCY: "1" });
  const busy = [handler("m0", jetStreamMessage()), handler("m1", jetStreamMessage())];
  await startedCount(started, 1);
  const video = jetStreamMessage();
  await handler("v0", video, "video");
  expect(video.nak).not.toHaveBeenCalled();
  release();
  await Promise.all(busy);
});

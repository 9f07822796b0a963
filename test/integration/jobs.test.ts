/**
 * The job machinery (embedded: in-process channel adapter) with a test processor registered
 * through the same interface the sharp/ffmpeg processors use. It tests retries, dead letters,
 * idempotence and the reconciler, not image processing.
 */
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import { customAlphabet } from "nanoid";
import type { Service } from "moleculer";
import { ProcessingError } from "../../lib/jobs/processor";
import type { Processor, ProcessorRegistry } from "../../lib/jobs/processor";
import type { MediaJson } from "../../lib/media/media-view";
import { originalKey } from "../../lib/storage/object-keys";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

const newMediaId = customAlphabet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", 21);
const OWNER = "01HZY3M6Q8W0R2T4V6X8Z0B2D4";

type Behaviour = (attempt: number) => "ok" | "transient" | "permanent";
const behaviours = new Map<string, Behaviour>();
const runs = new Map<string, number[]>();

/** Stores one "thumb" variant (a copy of the original) and reports progress; fails as told. */
const testProcessor: Processor = async (job, context) => {
  runs.set(job.mediaId, [...(runs.get(job.mediaId) ?? []), Date.now()]);
  context.reportProgress("processing", 10);
  const original = await context.downloadOriginal();
  const verdict = (behaviours.get(job.mediaId) ?? (() => "ok"))(job.attempt);
  if (verdict === "transient") throw new Error(`flaky on attempt ${job.attempt}`);
  if (verdict === "permanent") throw new ProcessingError("corrupt", "not an image", { permanent: true });
  const copy = path.join(context.workDir, "thumb.webp");
  await fs.promises.copyFile(original, copy);
  await context.saveVariants([{ name: "thumb", path: copy, mime: "image/webp", extension: "webp", width: 4, height: 3 }]);
  context.reportProgress("storing", 90);
  return { width: 4, height: 3, placeholder: "abc" };
};
const processors: ProcessorRegistry = { image: testProcessor };

let node: RunningNode;
const deadLetters: Array<{ id: string; reason: string }> = [];

beforeAll(async () => {
  node = await startNode(
    {
      SERVICES: "media,processing,users",
      JOB_MAX_ATTEMPTS: "3",
      JOB_RETRY_BASE_DELAY_MS: "200",
      JOB_RETRY_MAX_DELAY_MS: "400",
      JOB_DEADLINE_SECONDS: "2",
      JOB_RECONCILE_INTERVAL_SECONDS: "3600",
    },
    { processors },
  );
  node.broker.createService({
    name: "dead-letter-watch",
    channels: {
      "media.jobs.dead": {
        group: "watch",
        handler(this: Service, payload: { id: string; reason: string }) {
          deadLetters.push(payload);
        },
      },
    },
  });
});

afterAll(() => stopAllNodes());

async function upload(kind: "image" | "video" = "image", options: { publish?: boolean } = {}): Promise<string> {
  const id = newMediaId();
  const key = originalKey(id, kind === "image" ? "png" : "mp4");
  const bytes = Buffer.from(`content of ${id}`);
  await node.runtime.storage.put(key, Readable.from([bytes]), kind === "image" ? "image/png" : "video/mp4");
  const params = { id, ownerId: OWNER, kind, mime: kind === "image" ? "image/png" : "video/mp4", bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex"), originalKey: key };
  if (options.publish === false) {
    // A lost message: the row exists, nothing was published.
    const sendToChannel = (node.broker as unknown as { sendToChannel: unknown }).sendToChannel;
    (node.broker as unknown as { sendToChannel: () => Promise<void> }).sendToChannel = async () => undefined;
    try {
      await node.broker.call("media.create", params);
    } finally {
      (node.broker as unknown as { sendToChannel: unknown }).sendToChannel = sendToChannel;
    }
  } else {
    await node.broker.call("media.create", params);
  }
  return id;
}

async function get(id: string): Promise<MediaJson> {
  const answer = await node.broker.call<{ media: MediaJson }, { id: string }>("media.get", { id }, { meta: { user: { id: OWNER, role: "user", username: "o" } } });
  return answer.media;
}

const settled = (media: MediaJson) => media.status === "ready" || media.status === "failed";

test("success: uploaded → processing → ready with the processor's results and its variant", async () => {
  const id = await upload();
  const media = await eventually(() => get(id), settled);
  expect(media).toMatchObject({ status: "ready", reason: null, width: 4, height: 3, placeholder: "abc", progress: { stage: "ready", percent: 100 } });
  expect(media.variants.map((variant) => variant.name)).toEqual(["thumb"]);
});

test("a transient failure is retried with a growing delay, then succeeds", async () => {
  const id = newMediaId();
  behaviours.set(id, (attempt) => (attempt < 3 ? "transient" : "ok"));
  await uploadWithId(id);
  const media = await eventually(() => get(id), settled, 20_000);
  expect(media.status).toBe("ready");
  const [a, b, c] = runs.get(id) as [number, number, number];
  expect(runs.get(id)).toHaveLength(3);
  // Equal jitter: each delay is at least half its ceiling (200 ms, then 400 ms).
  expect(b - a).toBeGreaterThanOrEqual(100);
  expect(c - b).toBeGreaterThanOrEqual(200);
});

test("attempts are bounded: then failed with a reason, and the message is dead-lettered", async () => {
  const id = newMediaId();
  behaviours.set(id, () => "transient");
  // Registered before the upload, so every attempt fails.
  const created = await uploadWithId(id);
  const media = await eventually(() => get(created), settled, 20_000);
  expect(media).toMatchObject({ status: "failed", reason: "processing_error", progress: { stage: "failed" } });
  expect(runs.get(id)).toHaveLength(3);
  await eventually(async () => deadLetters.filter((letter) => letter.id === id), (letters) => letters.length === 1);
});

test("a permanent failure fails at once, without retries", async () => {
  const id = newMediaId();
  behaviours.set(id, () => "permanent");
  await uploadWithId(id);
  const media = await eventually(() => get(id), settled);
  expect(media).toMatchObject({ status: "failed", reason: "corrupt" });
  expect(runs.get(id)).toHaveLength(1);
});

test("a rerun is idempotent: the variant is overwritten, never duplicated; a finished item is not redone", async () => {
  const id = await upload();
  await eventually(() => get(id), settled);
  // The same message again (at-least-once): skipped, the row says it is done.
  await (node.broker as unknown as { sendToChannel(c: string, p: unknown): Promise<void> }).sendToChannel("media.jobs", { id, ownerId: OWNER, kind: "image" });
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(runs.get(id)).toHaveLength(1);
  // Forced reprocessing runs again and replaces the variant.
  const claim = await node.broker.call<{ decision: { action: string } }, object>("media.claimProcessing", { id, force: true });
  expect(claim.decision.action).toBe("start");
  await node.broker.call("media.releaseProcessing", { id });
  await (node.broker as unknown as { sendToChannel(c: string, p: unknown): Promise<void> }).sendToChannel("media.jobs", { id, ownerId: OWNER, kind: "image" });
  const media = await eventually(() => get(id), (m) => m.status === "ready" && (runs.get(id)?.length ?? 0) === 2);
  expect(media.variants.map((variant) => variant.name)).toEqual(["thumb"]);
});

test("a worker's variants are recorded all together or not at all; names recorded before are replaced", async () => {
  const id = await upload();
  await eventually(() => get(id), settled);
  const variant = (name: string, bytes: number) => ({ name, objectKey: `m/${id}/v/${name}.webp`, mime: "image/webp", width: 4, height: 3, durationSeconds: null, bytes });
  const save = (variants: unknown) => node.broker.call("media.saveVariants", { id, variants });
  // Past the response cache: on the way to `ready` the completion cleans it; these writes come after it.
  const recorded = async () => {
    const answer = await node.broker.call<{ media: MediaJson }, { id: string }>("media.get", { id }, { meta: { user: { id: OWNER, role: "user", username: "o" }, $cache: false } });
    return answer.media.variants.map((v) => ({ name: v.name, bytes: v.bytes }));
  };
  const before = await recorded();
  expect(before).toEqual([{ name: "thumb", bytes: expect.any(Number) }]);

  await expect(save([variant("display", 10), variant("display", 11)])).rejects.toMatchObject({ message: "Each variant name may appear once." });
  await expect(save([variant("display", 10), { ...variant("display-jpeg", 10), bytes: -1 }])).rejects.toMatchObject({ name: "ValidationError" });
  await expect(save([{ ...variant("display", 10), name: "../display" }])).rejects.toMatchObject({ name: "ValidationError" });
  await expect(save([])).rejects.toMatchObject({ name: "ValidationError" });
  expect(await recorded()).toEqual(before);

  await save([variant("thumb", 123), variant("display", 456)]);
  expect(await recorded()).toEqual(expect.arrayContaining([{ name: "thumb", bytes: 123 }, { name: "display", bytes: 456 }]));
  expect(await recorded()).toHaveLength(2);
});

test("the reconciler re-enqueues an item whose message was lost, and leaves kinds without a processor alone", async () => {
  const lost = await upload("image", { publish: false });
  const waiting = await upload("video");
  expect((await get(lost)).status).toBe("uploaded");
  // Past the deadline (2 s), a round picks it up.
  await new Promise((resolve) => setTimeout(resolve, 2200));
  const round = await node.broker.call<{ requeued: number }>("processing.reconcile");
  expect(round.requeued).toBe(1);
  expect(await eventually(() => get(lost), settled)).toMatchObject({ status: "ready" });
  expect((await get(waiting)).status).toBe("uploaded");
});

test("only one reconciler round runs at a time: a second one meanwhile does nothing", async () => {
  const lost = await upload("image", { publish: false });
  await new Promise((resolve) => setTimeout(resolve, 2200));
  const rounds = await Promise.all([node.broker.call<{ requeued: number }>("processing.reconcile"), node.broker.call<{ requeued: number }>("processing.reconcile")]);
  expect(rounds.map((round) => round.requeued).sort()).toEqual([0, 1]);
  await eventually(() => get(lost), settled);
});

async function uploadWithId(id: string): Promise<string> {
  const key = originalKey(id, "png");
  const bytes = Buffer.from(`content of ${id}`);
  await node.runtime.storage.put(key, Readable.from([bytes]), "image/png");
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  await node.broker.call("media.create", { id, ownerId: OWNER, kind: "image", mime: "image/png", bytes: bytes.length, sha256, originalKey: key });
  return id;
}

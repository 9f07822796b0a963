/**
 * Durability of processing jobs in cluster mode (MariaDB, Redis, NATS JetStream, S3): what
 * happens when a worker dies mid-job, and when a job message never reaches a worker.
 *
 * The gateway (api, users, site, media) runs in this process; the two workers (processing)
 * run as child processes so that one can be killed with SIGKILL, like a crashed container:
 * no stopped() hooks, no ack, its ffmpeg killed with it.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { customAlphabet } from "nanoid";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import type { MediaJson } from "../../lib/media/media-view";
import { originalKey } from "../../lib/storage/object-keys";
import { HttpClient } from "../support/http-client";
import { startNodeProcess, stopAllNodeProcesses } from "../support/node-process";
import type { NodeProcess } from "../support/node-process";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture } from "../support/uploads";

const newMediaId = customAlphabet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", 21);

/** A dead worker's claim is stale after this; running jobs heartbeat every quarter of it. */
const DEADLINE_SECONDS = 5;
const RECONCILE_SECONDS = 2;

let services: TestServices;
let gateway: RunningNode;
let workers: NodeProcess[] = [];
let client: HttpClient;
let token: string;
let userId: string;

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  // The media service (on the gateway) judges staleness at claim time, so it gets the same deadline as the workers.
  const env = {
    ...envFor(services),
    JOB_DEADLINE_SECONDS: String(DEADLINE_SECONDS),
    JOB_RECONCILE_INTERVAL_SECONDS: String(RECONCILE_SECONDS),
  };
  gateway = await startNode({ ...env, NODE_ID: "gateway", SERVICES: "api,users,site,media" });
  // Started after the gateway, which has created the databases (migrations) by now.
  workers = await Promise.all(
    ["worker-1", "worker-2"].map((name) => startNodeProcess({ ...env, NODE_ID: name, SERVICES: "processing", WORKER_CONCURRENCY: "1" })),
  );
  await gateway.broker.waitForServices(["processing"], 20_000);

  client = new HttpClient(gateway.baseUrl, { origin: gateway.publicUrl });
  const signedUp = await client.post<{ token: string; user: { id: string } }>("/api/auth/register", {
    username: "durable-owner",
    email: "durable-owner@example.test",
    password: "a long enough passphrase",
  });
  expect(signedUp.status).toBe(201);
  token = signedUp.body.token;
  userId = signedUp.body.user.id;
}, 120_000);

afterAll(async () => {
  await stopAllNodeProcesses();
  await stopAllNodes();
  await services?.stop();
}, 60_000);

async function mediaOf(id: string): Promise<MediaJson> {
  const answer = await client.get<{ media: MediaJson }>(`/api/media/${id}`, { bearer: token });
  if (answer.status !== 200) throw new Error(`GET /api/media/${id}: ${answer.status} ${answer.text}`);
  return answer.body.media;
}

/** Every variant URL serves bytes. */
async function expectVariantsServed(media: MediaJson): Promise<void> {
  for (const variant of media.variants) {
    const response = await fetch(variant.url);
    expect({ name: variant.name, status: response.status }).toEqual({ name: variant.name, status: 200 });
    expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(0);
  }
}

const isFfmpeg = (argv: readonly string[]) => /(^|\/)ffmpeg$/.test(argv[0] ?? "");

test("A message dropped on purpose: the reconciler finishes the job", async () => {
  const id = newMediaId();
  const bytes = fixture("exif_jpeg/orientation_1.jpg");
  const key = originalKey(id, "jpg");
  await gateway.runtime.storage.put(key, Readable.from([bytes]), "image/jpeg");
  // The row is written, the JetStream publish is swallowed: the nudge is lost.
  const broker = gateway.broker as unknown as { sendToChannel: (channel: string, payload: unknown) => Promise<void> };
  const published: string[] = [];
  const sendToChannel = broker.sendToChannel;
  broker.sendToChannel = async (channel) => {
    published.push(channel);
  };
  try {
    await gateway.broker.call("media.create", {
      id,
      ownerId: userId,
      kind: "image",
      mime: "image/jpeg",
      bytes: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      originalKey: key,
    });
  } finally {
    broker.sendToChannel = sendToChannel;
  }
  expect(published).toEqual(["media.jobs"]);
  expect((await mediaOf(id)).status).toBe("uploaded");

  // Past the deadline, a reconciler round on one of the workers publishes it again.
  const media = await eventually(() => mediaOf(id), (item) => item.status === "ready" || item.status === "failed", 30_000);
  expect(media).toMatchObject({ status: "ready", reason: null });
  expect(media.variants.map((variant) => variant.name).sort()).toEqual(["display", "display-jpeg", "thumb"]);
  await expectVariantsServed(media);
  expect(workers.some((worker) => /reconciler re-enqueued [1-9]\d* stuck item/.test(worker.output()))).toBe(true);
}, 45_000);

test("A worker process killed (SIGKILL) in the middle of a transcode: the job is redelivered and finishes on another worker; no duplicate variants", async () => {
  const form = new FormData();
  form.append("title", "killed mid-transcode");
  form.append("file", new Blob([fixture("video/mp4_h264_aac51_1080p60.mp4")]), "clip.mp4");
  const uploaded = await fetch(`${gateway.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  expect(uploaded.status).toBe(201);
  const { media: created } = (await uploaded.json()) as { media: MediaJson };

  // The worker that took the job is the one running ffmpeg.
  const victim = await eventually(
    async () => workers.find((worker) => worker.alive && worker.descendants().some((child) => isFfmpeg(child.argv))),
    (found) => found !== undefined,
    30_000,
  );
  if (!victim) throw new Error("no worker is running ffmpeg");
  const survivor = workers.find((worker) => worker !== victim) as NodeProcess;
  expect((await mediaOf(created.id)).status).toBe("processing");

  const exit = await victim.kill("SIGKILL");
  expect(exit.signal).toBe("SIGKILL");
  expect(victim.descendants()).toEqual([]);
  expect(survivor.alive).toBe(true);

  // Two paths may bring it back: JetStream redelivers the unacked message after its ack wait (30 s
  // after the first delivery), and the reconciler re-enqueues the `processing` row once its last sign
  // of life is older than JOB_DEADLINE_SECONDS (README: "a lost message, a dead worker"). The bound
  // is the reconciler's promise, deadline + two rounds + the transcode (a few seconds here), and it
  // ends before the ack wait, so the outcome does not hang on where in the reconciler's cycle the
  // single redelivery happens to land: the test is deterministic either way.
  const bound = (DEADLINE_SECONDS + 2 * RECONCILE_SECONDS) * 1000 + 12_000;
  const media = await eventually(() => mediaOf(created.id), (item) => item.status === "ready" || item.status === "failed", bound).catch((error: Error) => {
    throw new Error(`${error.message}\n--- ${survivor.name} output ---\n${survivor.output().slice(-4000)}`);
  });
  expect(media).toMatchObject({ status: "ready", reason: null });
  const names = media.variants.map((variant) => variant.name);
  expect(names.sort()).toEqual(["360p", "720p", "poster"]);
  expect(new Set(names).size).toBe(names.length);
  await expectVariantsServed(media);
  expect(survivor.alive).toBe(true);
}, 80_000);

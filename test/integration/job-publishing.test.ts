/**
 * Job messages published while no worker is subscribed (cluster mode: MariaDB, Redis, NATS JetStream, S3).
 *
 * @moleculer/channels creates a channel's JetStream stream only when a node subscribes to it. A gateway
 * with the media service that publishes before any `processing` node ever ran (a fresh cluster), or after
 * NATS lost its streams while every worker was down, would otherwise get "no responders" (503) and leave
 * the item to the reconciler, i.e. JOB_DEADLINE_SECONDS. Here the deadline is an hour, so only the
 * message itself can bring the item to `ready` in time.
 */
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import type { MediaJson } from "../../lib/media/media-view";
import { signUpMember } from "../support/http-client";
import type { SignedUpMember } from "../support/http-client";
import { eventually, startNode, stopAllNodes, stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture } from "../support/uploads";

/** The reconciler re-enqueues only rows older than this: far longer than any wait below. */
const DEADLINE_SECONDS = 3600;
/** What the NATS adapter names the streams of `media.jobs` and its dead letters (namespace `shoal` as prefix, dots as underscores). */
const JOBS_STREAM = "shoal_media_jobs";
const DEAD_LETTER_STREAM = "shoal_media_jobs_dead";

let services: TestServices;
let env: Record<string, string>;
let gateway: RunningNode;
let member: SignedUpMember;
let nats: NatsConnection;

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 0 }, redis: true, nats: true, s3: true });
  env = { ...envFor(services), JOB_DEADLINE_SECONDS: String(DEADLINE_SECONDS), RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100" };
  // Publishes the jobs; no node of this cluster runs `processing` yet.
  gateway = await startNode({ ...env, NODE_ID: "publisher", SERVICES: "api,users,media,site" });
  member = await signUpMember(gateway.baseUrl, gateway.publicUrl, { prefix: "publisher" });
  nats = await connect({ servers: (services.nats as NonNullable<TestServices["nats"]>).url });
}, 120_000);

afterAll(async () => {
  await nats?.close();
  await stopAllNodes();
  await services?.stop();
}, 60_000);

async function uploadPhoto(name: string): Promise<string> {
  const form = new FormData();
  form.append("file", new Blob([fixture(`exif_jpeg/${name}`)]), name);
  const uploaded = await fetch(`${gateway.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${member.token}` }, body: form });
  expect(uploaded.status).toBe(201);
  return ((await uploaded.json()) as { media: { id: string } }).media.id;
}

async function mediaOf(id: string): Promise<MediaJson> {
  const answer = await member.client.get<{ media: MediaJson }>(`/api/media/${id}`, { bearer: member.token });
  if (answer.status !== 200) throw new Error(`GET /api/media/${id}: ${answer.status} ${answer.text}`);
  return answer.body.media;
}

/** Messages in a stream, or null when the stream does not exist. */
async function messagesIn(stream: string): Promise<number | null> {
  const manager = await nats.jetstreamManager();
  return manager.streams.info(stream).then(
    (info) => info.state.messages,
    () => null,
  );
}

/** Starts a worker node, waits for the item (45 s, far inside the reconciler's deadline: only the message can do it), and stops the worker again. */
async function expectProcessedByLateWorker(id: string, nodeId: string): Promise<void> {
  const worker = await startNode({ ...env, NODE_ID: nodeId, SERVICES: "processing" });
  try {
    const media = await eventually(() => mediaOf(id), (item) => item.status === "ready" || item.status === "failed", 45_000);
    expect(media).toMatchObject({ status: "ready", reason: null });
    expect(media.variants.map((variant) => variant.name).sort()).toEqual(["display", "display-jpeg", "thumb"]);
  } finally {
    await stopNode(worker);
  }
}

test("a photo uploaded while no worker has ever run waits in JetStream and is processed as soon as a worker starts", async () => {
  // The gateway made the job streams once its channel adapter connected, before any upload.
  expect(await eventually(() => messagesIn(JOBS_STREAM), (messages) => messages !== null)).toBe(0);
  expect(await messagesIn(DEAD_LETTER_STREAM)).toBe(0);
  const id = await uploadPhoto("orientation_1.jpg");
  // Published and stored, with nobody subscribed.
  expect(await messagesIn(JOBS_STREAM)).toBe(1);
  // The gateway made the dead-letter stream too, as a subscribing node would.
  expect(await messagesIn(DEAD_LETTER_STREAM)).toBe(0);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  expect((await mediaOf(id)).status).toBe("uploaded");

  await expectProcessedByLateWorker(id, "late-worker-1");
}, 90_000);

test("after NATS lost the streams while every worker was down, the next upload recreates them and is processed when a worker starts", async () => {
  // What a NATS restart without persisted streams leaves behind: no stream, no durable consumer.
  const manager = await nats.jetstreamManager();
  await manager.streams.delete(JOBS_STREAM);
  await manager.streams.delete(DEAD_LETTER_STREAM);
  expect(await messagesIn(JOBS_STREAM)).toBeNull();

  const id = await uploadPhoto("orientation_2.jpg");
  expect(await messagesIn(JOBS_STREAM)).toBe(1);
  expect(await messagesIn(DEAD_LETTER_STREAM)).toBe(0);
  expect((await mediaOf(id)).status).toBe("uploaded");

  await expectProcessedByLateWorker(id, "late-worker-2");
}, 90_000);

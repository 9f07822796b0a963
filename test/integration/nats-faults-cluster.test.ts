import { connect } from "nats";
import type { StreamInfo } from "nats";
import sharp from "sharp";
import { MEDIA_JOBS_CHANNEL } from "../../lib/service-contracts";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { expectErrorBody, HttpClient, signUpMember } from "../support/http-client";
import type { ApiResponse, SignedUpMember } from "../support/http-client";
import { eventually, startNode, stopAllNodes, stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

/**
 * A gateway, a catalogue node and a worker node talking through one NATS server, which the tests SIGKILL.
 * A call that cannot leave the node must fail at once: within ANSWER_BOUND_MS, far below the 30 s request
 * timeout it would otherwise wait for.
 */
const ANSWER_BOUND_MS = 5000;
const UPLOADS = 50;
/** One request timeout (30 s) for a call lost while the nodes reconnect, and time for the next. */
const RECOVERY_MS = 45_000;

let services: TestServices;
let env: Record<string, string>;
let gateway: RunningNode;
let catalogue: RunningNode;
let member: SignedUpMember;

interface MediaBody {
  media: { id: string; status: string; variants: { name: string }[] };
}

function api(): HttpClient {
  return new HttpClient(gateway.baseUrl, { origin: null });
}

async function killNats(): Promise<void> {
  const nats = services.nats!;
  process.kill(nats.pid ?? 0, "SIGKILL");
  await eventually(async () => nats.isRunning(), (running) => !running, 10_000);
}

/** JetStream's streams as NATS reports them; the media jobs stream is the one whose subject ends with the channel's name. */
async function jobStream(): Promise<StreamInfo> {
  const connection = await connect({ servers: services.nats!.url });
  try {
    const manager = await connection.jetstreamManager();
    const streams = await manager.streams.list().next();
    const stream = streams.find((info) => info.config.subjects.some((subject) => subject.endsWith(MEDIA_JOBS_CHANNEL)));
    if (!stream) throw new Error(`no stream for ${MEDIA_JOBS_CHANNEL} among ${streams.map((info) => info.config.name).join(", ")}`);
    return stream;
  } finally {
    await connection.close();
  }
}

async function uploadPicture(index: number): Promise<string> {
  const picture = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: (index * 37) % 256, g: (index * 11) % 256, b: 255 - index } } })
    .png()
    .toBuffer();
  const form = new FormData();
  form.append("file", new Blob([picture], { type: "image/png" }), `queued-${index}.png`);
  const answer = await fetch(`${gateway.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${member.token}` }, body: form });
  expect(answer.status).toBe(201);
  return ((await answer.json()) as MediaBody).media.id;
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  // The reconciler re-enqueues what is still pending after 15 s: it sends jobs that JetStream also redelivers.
  env = { ...envFor(services), RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100", JOB_DEADLINE_SECONDS: "15", JOB_RECONCILE_INTERVAL_SECONDS: "5" };
  gateway = await startNode({ ...env, NODE_ID: "nats-faults-gateway", SERVICES: "api,users,site" });
  catalogue = await startNode({ ...env, NODE_ID: "nats-faults-media", SERVICES: "media" });
  await gateway.broker.waitForServices(["media"], 20_000);
  member = await signUpMember(gateway.baseUrl, gateway.publicUrl, { prefix: "natsfault" });
}, 180_000);

afterAll(async () => {
  await stopAllNodes();
  await services?.stop();
});

test("while NATS is down, calls to other nodes answer 503 at once and local ones still work; the nodes reconnect by themselves", async () => {
  expect((await api().get("/api/media?scope=mine", { bearer: member.token })).status).toBe(200);
  await killNats();
  try {
    await eventually(() => api().get<{ checks: Record<string, { status: string }> }>("/api/health"), (answer) => answer.body.checks.transporter?.status === "down");
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const started = Date.now();
      const answer: ApiResponse = await api().get("/api/media?scope=mine", { bearer: member.token });
      const tookMs = Date.now() - started;
      expectErrorBody(answer, 503, "unavailable");
      expect(answer.headers.get("retry-after")).toMatch(/^\d+$/);
      expect({ answeredWithinBound: tookMs < ANSWER_BOUND_MS, tookMs }).toEqual({ answeredWithinBound: true, tookMs });
    }
    // The session resolves on this node (users runs here): no NATS needed.
    expect((await api().get("/api/users/me", { bearer: member.token })).status).toBe(200);
  } finally {
    await services.nats!.start();
  }
  // A call sent in the moment the gateway is back but the catalogue node not yet goes nowhere and waits out
  // the 30 s request timeout; the next one must succeed.
  await eventually(() => api().get("/api/media?scope=mine", { bearer: member.token }), (answer) => answer.status === 200, RECOVERY_MS);
  const health = await eventually(() => api().get<{ status: string }>("/api/health"), (answer) => answer.body.status === "ok", 30_000);
  expect(health.status).toBe(200);
}, 150_000);

test("a call waiting for another node's answer when NATS goes is rejected with 503 at once, not after the request timeout", async () => {
  // An action that answers after the request timeout's worth of time, on the catalogue node.
  catalogue.broker.createService({ name: "slowpoke", actions: { answerLate: () => new Promise((resolve) => setTimeout(() => resolve("late"), 30_000).unref()) } });
  await gateway.broker.waitForServices(["slowpoke"], 20_000);
  const started = Date.now();
  const waiting = gateway.broker.call("slowpoke.answerLate").then(
    () => ({ answered: true as const }),
    (error: { code?: number; type?: string }) => ({ answered: false as const, code: error.code, type: error.type, afterMs: Date.now() - started }),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  await killNats();
  try {
    const outcome = await waiting;
    expect(outcome).toMatchObject({ answered: false, code: 503, type: "REQUEST_REJECTED" });
    const tookMs = outcome.answered ? Number.NaN : outcome.afterMs;
    expect({ answeredWithinBound: tookMs < ANSWER_BOUND_MS, tookMs }).toEqual({ answeredWithinBound: true, tookMs });
  } finally {
    await services.nats!.start();
  }
  await eventually(() => api().get("/api/media?scope=mine", { bearer: member.token }), (answer) => answer.status === 200, RECOVERY_MS);
}, 120_000);

test("50 uploads waiting in the job stream when NATS is SIGKILLed all become ready after its restart, each with one set of variants", async () => {
  // A worker makes the durable consumer, then goes, so that the jobs wait in the stream.
  const firstWorker = await startNode({ ...env, NODE_ID: "nats-faults-worker-1", SERVICES: "processing" });
  await gateway.broker.waitForServices(["processing"], 20_000);
  await stopNode(firstWorker);

  const ids: string[] = [];
  for (let batch = 0; batch < UPLOADS; batch += 5) {
    ids.push(...(await Promise.all([0, 1, 2, 3, 4].map((offset) => uploadPicture(batch + offset)))));
  }
  const before = await jobStream();
  expect(before.config.storage).toBe("file");
  expect(before.state.messages).toBeGreaterThanOrEqual(UPLOADS);

  await killNats();
  await services.nats!.start();
  const after = await jobStream();
  expect(after.config.storage).toBe("file");
  expect(after.state.messages).toBeGreaterThanOrEqual(before.state.messages);

  await startNode({ ...env, NODE_ID: "nats-faults-worker-2", SERVICES: "processing" });
  const items = await eventually(
    () => Promise.all(ids.map((id) => api().get<MediaBody>(`/api/media/${id}`, { bearer: member.token }))),
    (answers) => answers.every((answer) => answer.status === 200 && answer.body.media.status === "ready"),
    180_000,
  );
  for (const item of items) {
    const names = item.body.media.variants.map((variant) => variant.name).sort();
    expect(names).toEqual(["display", "display-jpeg", "thumb"]);
    // One stored object per variant and the original: a job that ran twice left nothing behind.
    const objects = await catalogue.runtime.storage.list(`media/${item.body.media.id}/`);
    expect(objects).toHaveLength(names.length + 1);
  }
}, 360_000);

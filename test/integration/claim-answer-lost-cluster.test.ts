/**
 * A worker's claim recorded by the media service but whose answer never reaches the worker (the call timed out: NATS
 * slow, the media node busy). Cluster mode: MariaDB, Redis, S3, NATS JetStream; the catalogue (media) and the worker
 * (processing) are separate nodes, so the claim crosses NATS. The worker's broker drops the answers of its first claims
 * after the media service has recorded them, as its request timeout would.
 *
 * JOB_DEADLINE_SECONDS is the default ten minutes, far beyond these tests: an item that became ready was not brought
 * back by the reconciler.
 */
import { Errors } from "moleculer";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import type { MediaJson } from "../../lib/media/media-view";
import { signUpMember } from "../support/http-client";
import type { SignedUpMember } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture } from "../support/uploads";

const MAX_ATTEMPTS = 3;
/** Well within the test's time: past it, only the reconciler (ten minutes) would have brought the item back. */
const READY_WITHIN_MS = 30_000;

interface Claim {
  readonly token: string;
  readonly decision: { action: string; attempt?: number; again?: boolean; why?: string };
  readonly answerLost: boolean;
}

let services: TestServices;
let gateway: RunningNode;
let worker: RunningNode;
let member: SignedUpMember;
/** Answers of media.claimProcessing still to drop on the worker. */
let answersToLose = 0;
const claims = new Map<string, Claim[]>();

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  const env = {
    ...envFor(services),
    RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100",
    JOB_DEADLINE_SECONDS: "600",
    JOB_RECONCILE_INTERVAL_SECONDS: "60",
    JOB_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    JOB_RETRY_BASE_DELAY_MS: "200",
    JOB_RETRY_MAX_DELAY_MS: "400",
  };
  gateway = await startNode({ ...env, NODE_ID: "claim-lost-gateway", SERVICES: "api,users,site,media" });
  worker = await startNode({ ...env, NODE_ID: "claim-lost-worker", SERVICES: "processing", PROCESSING_KINDS: "image", WORKER_CONCURRENCY: "1" });
  await gateway.broker.waitForServices(["processing"], 20_000);
  await worker.broker.waitForServices(["media"], 20_000);

  // The claim goes to the media node and is recorded there; its answer, once back, is dropped as a timeout would.
  const broker = worker.broker as unknown as { call: (action: string, params?: unknown, options?: unknown) => Promise<unknown> };
  const call = broker.call.bind(broker);
  broker.call = async (action, params, options) => {
    const answer = await call(action, params, options);
    if (action !== "media.claimProcessing") return answer;
    const { id, token } = params as { id: string; token: string };
    const answerLost = answersToLose > 0;
    if (answerLost) answersToLose -= 1;
    claims.set(id, [...(claims.get(id) ?? []), { token, decision: (answer as { decision: Claim["decision"] }).decision, answerLost }]);
    if (answerLost) throw new Errors.RequestTimeoutError({ action, nodeID: "claim-lost-gateway" });
    return answer;
  };
  member = await signUpMember(gateway.baseUrl, gateway.publicUrl, { prefix: "claimlost" });
}, 180_000);

afterAll(async () => {
  await stopAllNodes();
  await services?.stop();
});

async function upload(name: string): Promise<string> {
  const form = new FormData();
  form.append("file", new Blob([fixture(`exif_jpeg/${name}`)], { type: "image/jpeg" }), name);
  const answer = await fetch(`${gateway.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${member.token}` }, body: form });
  expect(answer.status).toBe(201);
  return ((await answer.json()) as { media: { id: string } }).media.id;
}

async function settled(id: string): Promise<MediaJson> {
  return eventually(
    async () => (await member.client.get<{ media: MediaJson }>(`/api/media/${id}`, { bearer: member.token })).body.media,
    (media) => media.status === "ready" || media.status === "failed",
    READY_WITHIN_MS,
  );
}

/** Ready, with one set of variants: one stored object per variant, and the original. */
async function expectOneSetOfVariants(media: MediaJson): Promise<void> {
  expect(media).toMatchObject({ status: "ready", reason: null });
  const names = media.variants.map((variant) => variant.name).sort();
  expect(names).toEqual(["display", "display-jpeg", "thumb"]);
  expect(await gateway.runtime.storage.list(`media/${media.id}/`)).toHaveLength(names.length + 1);
}

test("the first claim's answer is lost: the worker asks again with the same claim and gets the item, which becomes ready, processed once", async () => {
  answersToLose = 1;
  const id = await upload("orientation_1.jpg");
  await expectOneSetOfVariants(await settled(id));
  const made = claims.get(id) ?? [];
  expect(made.map((claim) => ({ answerLost: claim.answerLost, decision: claim.decision }))).toEqual([
    { answerLost: true, decision: { action: "start", attempt: 1 } },
    { answerLost: false, decision: { action: "start", attempt: 1, again: true } },
  ]);
  expect(new Set(made.map((claim) => claim.token)).size).toBe(1);
}, 60_000);

test("every answer lost while the worker holds the message: it gives the claim back, and the redelivered message takes the item", async () => {
  answersToLose = MAX_ATTEMPTS;
  const id = await upload("orientation_2.jpg");
  await expectOneSetOfVariants(await settled(id));
  const made = claims.get(id) ?? [];
  const held = made.slice(0, MAX_ATTEMPTS);
  const redelivered = made.slice(MAX_ATTEMPTS);
  // The held message's claims: one token, the first recorded, the others answered "yours already"; all answers lost.
  expect(held.map((claim) => ({ answerLost: claim.answerLost, decision: claim.decision }))).toEqual([
    { answerLost: true, decision: { action: "start", attempt: 1 } },
    ...Array.from({ length: MAX_ATTEMPTS - 1 }, () => ({ answerLost: true, decision: { action: "start", attempt: 1, again: true } })),
  ]);
  expect(new Set(held.map((claim) => claim.token)).size).toBe(1);
  // The redelivery's claim: its own token, starting the item afresh (the attempt given back was not counted).
  expect(redelivered.map((claim) => ({ answerLost: claim.answerLost, decision: claim.decision }))).toEqual([{ answerLost: false, decision: { action: "start", attempt: 1 } }]);
  expect(redelivered[0]?.token).not.toBe(held[0]?.token);
}, 60_000);

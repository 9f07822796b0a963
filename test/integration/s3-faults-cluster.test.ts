import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { HttpClient, signUpMember, usedBytesOf } from "../support/http-client";
import type { SignedUpMember } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { startTcpProxy } from "../support/tcp-proxy";
import type { TcpProxy } from "../support/tcp-proxy";
import { fixture, multipartUpload, sha256, tusCreate, tusUpload } from "../support/uploads";

/**
 * An api node and a processing node whose only way to the bucket is a proxy that can cut it off. While S3 is
 * out of reach, what does not need the bucket goes on; what does is refused at once (storing an upload: 503 with
 * Retry-After) or waits (processing), and nothing is half-written or lost; once S3 is back, everything goes on
 * without a restart. Answers must come within ANSWER_BOUND_MS, a generous margin on a shared machine: without it
 * a refused connection might be retried for as long as the 30 s request timeout.
 */
const ANSWER_BOUND_MS = 5000;
/** Retries so short that, were an unreachable store counted as a failed attempt, the item would fail within 2 s. */
const JOB_RETRIES = { JOB_MAX_ATTEMPTS: "2", JOB_RETRY_BASE_DELAY_MS: "200", JOB_RETRY_MAX_DELAY_MS: "1000" };

let services: TestServices;
let proxy: TcpProxy;
let api: RunningNode;
let env: Record<string, string>;
let s3: S3Client;
let bucket: string;
let member: SignedUpMember;
let storedId: string;

interface MediaBody {
  media: { id: string; status: string; title: string | null; thumbnailUrl?: string | null; sha256?: string };
}
interface HealthBody {
  status: string;
  checks: Record<string, { status: string }>;
}

const client = (node: RunningNode) => new HttpClient(node.baseUrl, { origin: null });

async function timed<T>(request: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const answer = await request();
  const tookMs = Date.now() - started;
  expect({ answeredWithinBound: tookMs < ANSWER_BOUND_MS, tookMs }).toEqual({ answeredWithinBound: true, tookMs });
  return answer;
}

const itemOf = (id: string) => client(api).get<MediaBody>(`/api/media/${id}`, { bearer: member.token });
const health = () => client(api).get<HealthBody>("/api/health");

async function bucketKeys(): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (listed.Contents ?? []).map((entry) => entry.Key ?? "").sort();
}

const multipart = (bytes: Buffer, name: string, type: string) => multipartUpload(api.baseUrl, member.token, bytes, name, type);

/** What the member has: items, quota reservations, bytes used. */
async function holdings(): Promise<{ media: number; reservations: number; usedBytes: number }> {
  const me = await client(api).get<{ user: { id: string } }>("/api/users/me", { bearer: member.token });
  const primary = services.mariadb!.primary;
  const media = await primary.query<{ count: number }>("select count(*) as count from shoal_media.media where owner_id = ?", [me.body.user.id]);
  const reservations = await primary.query<{ count: number }>("select count(*) as count from shoal_membership.quota_reservations where user_id = ?", [me.body.user.id]);
  return { media: Number(media[0]?.count), reservations: Number(reservations[0]?.count), usedBytes: await usedBytesOf(client(api), member.token) };
}

async function attemptsOf(id: string): Promise<number> {
  const rows = await services.mariadb!.primary.query<{ attempts: number }>("select attempts from shoal_media.media where id = ?", [id]);
  return Number(rows[0]?.attempts);
}

/** When the item's row last changed (every claim and hand-back changes it), in ms. */
async function rowChangedAt(id: string): Promise<number> {
  const rows = await services.mariadb!.primary.query<{ updated_at: number }>("select updated_at from shoal_media.media where id = ?", [id]);
  return Number(rows[0]?.updated_at);
}

/** A PNG no earlier test uploaded (the same bytes again would be answered as a duplicate, without storing anything). */
const freshImage = (tag: string) => Buffer.concat([fixture("image_formats/png_rgba_alpha.png"), Buffer.from(tag)]);

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  const store = services.s3!;
  bucket = store.bucket;
  proxy = await startTcpProxy(Number(new URL(store.endpoint).port));
  s3 = new S3Client({
    endpoint: store.endpoint,
    region: store.region,
    forcePathStyle: store.forcePathStyle,
    credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey },
  });
  env = { ...envFor(services), S3_ENDPOINT: proxy.url("http"), ...JOB_RETRIES };
  api = await startNode({ ...env, NODE_ID: "s3-faults-api", SERVICES: "api,users,media,site" });
  member = await signUpMember(api.baseUrl, api.publicUrl, { prefix: "s3fault" });
  const stored = await multipart(freshImage("before"), "before.png", "image/png");
  expect(stored.status).toBe(201);
  storedId = stored.body.media!.id;
}, 180_000);

afterAll(async () => {
  await stopAllNodes();
  s3?.destroy();
  await proxy?.close();
  await services?.stop();
});

afterEach(async () => {
  proxy.restore();
  // Until a probe (every 2 s) has reached the store again, the node still counts it out of reach.
  await eventually(health, (answer) => answer.body.checks.storage?.status === "ok", 60_000);
}, 90_000);

test("with S3 cut off: health says degraded, reads answer, and uploads are refused at once with 503, leaving no object, row or quota", async () => {
  const keysBefore = await bucketKeys();
  const before = await holdings();
  proxy.cut();

  const report = await eventually(() => timed(health), (answer) => answer.body.status !== "ok", 30_000);
  expect({ http: report.status, status: report.body.status, storage: report.body.checks.storage?.status }).toEqual({ http: 200, status: "degraded", storage: "down" });
  // What needs no bytes from the bucket: the item (its URLs are signed here), the member's list, the account.
  expect((await timed(() => itemOf(storedId))).body.media.id).toBe(storedId);
  const mine = await timed(() => client(api).get<{ items: { id: string }[] }>("/api/media?scope=mine", { bearer: member.token }));
  expect(mine.body.items.map((item) => item.id)).toEqual([storedId]);

  const refused = await timed(() => multipart(freshImage("multipart during"), "during.png", "image/png"));
  expect({ status: refused.status, code: refused.body.error?.code, retryAfter: refused.retryAfter }).toEqual({ status: 503, code: "unavailable", retryAfter: "5" });

  const bytes = freshImage("tus during");
  const created = await timed(() => tusCreate(`${api.baseUrl}/api/uploads`, member.token, bytes.length, { filename: "during.png", filetype: "image/png" }));
  expect({ status: created.status, code: (JSON.parse(created.body) as { error: { code: string } }).error.code, retryAfter: created.retryAfter }).toEqual({
    status: 503,
    code: "unavailable",
    retryAfter: "5",
  });
  // The quota reserved for that upload before the store refused to begin it is given back.
  expect(await eventually(holdings, (now) => now.reservations === before.reservations)).toEqual(before);

  proxy.restore();
  expect(await bucketKeys()).toEqual(keysBefore);
}, 120_000);

test("an upload waiting for processing while S3 is cut off is not failed: it is processed once S3 is back, and uploads go on without a restart", async () => {
  const waiting = await multipart(freshImage("waiting"), "waiting.png", "image/png");
  expect(waiting.status).toBe(201);
  const waitingId = waiting.body.media!.id;
  proxy.cut();
  await startNode({ ...env, NODE_ID: "s3-faults-processing", SERVICES: "processing" });
  // Five times the whole retry budget: counted as failed attempts, the item would be `failed` by now.
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  // The first try shows the item `processing` for a moment before handing it back; it is `uploaded` after it.
  const between = await eventually(
    async () => ({ status: (await itemOf(waitingId)).body.media.status, attempts: await attemptsOf(waitingId) }),
    (state) => state.status !== "processing",
    10_000,
  );
  expect(between).toEqual({ status: "uploaded", attempts: 0 });
  expect((await itemOf(storedId)).body.media.status).toBe("uploaded");
  // That try told the processing node of the outage: the tries after it wait without claiming, so the row is left alone.
  const changedAt = await rowChangedAt(waitingId);
  await new Promise((resolve) => setTimeout(resolve, 3 * Number(JOB_RETRIES.JOB_RETRY_MAX_DELAY_MS)));
  expect(await rowChangedAt(waitingId)).toBe(changedAt);

  proxy.restore();
  for (const id of [storedId, waitingId]) {
    await eventually(() => itemOf(id), (answer) => answer.body.media.status === "ready", 60_000);
  }
  const bytes = freshImage("after");
  const done = await tusUpload(bytes, { endpoint: `${api.baseUrl}/api/uploads`, token: member.token, metadata: { filename: "after.png", filetype: "image/png" } });
  const after = await eventually(() => itemOf(done.mediaId!), (answer) => answer.body.media.status === "ready", 60_000);
  expect(after.body.media.sha256).toBe(sha256(bytes));
  expect(await attemptsOf(waitingId)).toBe(1);
}, 180_000);

test("with S3 hanging (connections accepted, nothing answered): health says degraded, reads answer, and once the node knows, uploads are refused at once", async () => {
  const before = await holdings();
  proxy.hang();
  const report = await eventually(() => timed(health), (answer) => answer.body.status !== "ok", 30_000);
  expect({ http: report.status, status: report.body.status, storage: report.body.checks.storage?.status }).toEqual({ http: 200, status: "degraded", storage: "down" });
  expect((await timed(() => itemOf(storedId))).body.media.id).toBe(storedId);
  const mine = await timed(() => client(api).get<{ items: { id: string }[] }>("/api/media?scope=mine", { bearer: member.token }));
  expect(mine.status).toBe(200);

  // Once a call has waited out the store's silence (30 s a try; here the health check's), the node knows, and
  // uploads are refused without trying the store.
  await eventually(() => Promise.resolve(api.runtime.storage.outage?.known), (known) => known === true, 90_000);
  const refused = await timed(() => multipart(freshImage("multipart hanging"), "hanging.png", "image/png"));
  expect({ status: refused.status, code: refused.body.error?.code, retryAfter: refused.retryAfter }).toEqual({ status: 503, code: "unavailable", retryAfter: "5" });
  const bytes = freshImage("tus hanging");
  const created = await timed(() => tusCreate(`${api.baseUrl}/api/uploads`, member.token, bytes.length, { filename: "hanging.png", filetype: "image/png" }));
  expect({ status: created.status, retryAfter: created.retryAfter }).toEqual({ status: 503, retryAfter: "5" });
  expect(await eventually(holdings, (now) => now.reservations === before.reservations)).toEqual(before);

  proxy.restore();
  await eventually(() => timed(health), (answer) => answer.body.status === "ok", 30_000);
  const done = await tusUpload(bytes, { endpoint: `${api.baseUrl}/api/uploads`, token: member.token, metadata: { filename: "after-hang.png", filetype: "image/png" } });
  expect((await itemOf(done.mediaId!)).body.media.sha256).toBe(sha256(bytes));
}, 240_000);

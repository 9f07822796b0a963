/**
 * Uploads in cluster mode: two gateway nodes (A and B) over NATS, sharing MariaDB, Redis and S3.
 * An upload begun through one node is finished through the other; concurrent writes to one upload
 * through both nodes are serialised by the Redis lock; refusals and abandoned uploads leave nothing behind.
 */
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { HttpClient, myMediaOf, signUpMember, usedBytesOf } from "../support/http-client";
import { eventually, startNode, stopAllNodes, stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture, multipartUpload, sha256, tusCreate, tusUpload } from "../support/uploads";
import type { MediaJson } from "../../lib/media/media-view";

const KiB = 1024;
const VIDEO = "video/mp4_h264_aac51_1080p60.mp4";
const TUS = { "Tus-Resumable": "1.0.0" } as const;

let services: TestServices;
let env: Record<string, string>;
let nodeA: RunningNode;
let nodeB: RunningNode;
let s3: S3Client;

interface SignedUp {
  token: string;
  /** A client of each node, both with the same bearer token. */
  a: HttpClient;
  b: HttpClient;
}

async function signUp(through: RunningNode = nodeA): Promise<SignedUp> {
  const { token } = await signUpMember(through.baseUrl, through.publicUrl, { prefix: "clusterup" });
  return { token, a: new HttpClient(nodeA.baseUrl), b: new HttpClient(nodeB.baseUrl) };
}



/** Every key in the bucket, sorted. */
async function bucketKeys(): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: services.s3!.bucket, ContinuationToken: token }));
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

/** Keys that are not media objects: what unfinished or refused uploads would leave behind. */
async function temporaryKeys(): Promise<string[]> {
  return (await bucketKeys()).filter((key) => !key.startsWith("media/"));
}

async function downloadSha256(url: string, base: string): Promise<string> {
  const response = await fetch(new URL(url, base));
  expect(response.status).toBe(200);
  return sha256(new Uint8Array(await response.arrayBuffer()));
}

function uploadIdOf(location: string): string {
  return new URL(location, "http://x").pathname.split("/").pop()!;
}

async function head(node: RunningNode, uploadId: string, token: string): Promise<{ status: number; offset: number | null; length: number | null }> {
  const response = await fetch(`${node.baseUrl}/api/uploads/${uploadId}`, { method: "HEAD", headers: { ...TUS, Authorization: `Bearer ${token}` } });
  const offset = response.headers.get("upload-offset");
  const length = response.headers.get("upload-length");
  return { status: response.status, offset: offset === null ? null : Number(offset), length: length === null ? null : Number(length) };
}

interface PatchAnswer {
  status: number;
  offset: number | null;
  mediaId: string | null;
  body: string;
}

async function patch(node: RunningNode, uploadId: string, token: string, offset: number, body: Uint8Array | ReadableStream<Uint8Array>): Promise<PatchAnswer> {
  const streamed = !(body instanceof Uint8Array);
  const response = await fetch(`${node.baseUrl}/api/uploads/${uploadId}`, {
    method: "PATCH",
    headers: {
      ...TUS,
      Authorization: `Bearer ${token}`,
      "Upload-Offset": String(offset),
      "Content-Type": "application/offset+octet-stream",
    },
    body,
    ...(streamed ? { duplex: "half" } : {}),
  } as RequestInit);
  const newOffset = response.headers.get("upload-offset");
  return {
    status: response.status,
    offset: newOffset === null ? null : Number(newOffset),
    mediaId: response.headers.get("shoal-media-id"),
    body: await response.text(),
  };
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  env = { ...envFor(services), SERVICES: "api,users,media,site", RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000" };
  [nodeA, nodeB] = await Promise.all([startNode({ ...env, NODE_ID: "uploads-a" }), startNode({ ...env, NODE_ID: "uploads-b" })]);
  await Promise.all([nodeA.broker.waitForServices(["users", "media", "site"], 20_000), nodeB.broker.waitForServices(["users", "media", "site"], 20_000)]);
  const settings = services.s3!;
  s3 = new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
  });
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await stopAllNodes();
  await services?.stop();
});

test("an upload begun through node A, dropped half-way and resumed through node B completes with the file's bytes, and leaves no temporary objects", async () => {
  const user = await signUp();
  const bytes = fixture(VIDEO);
  const first = await tusUpload(bytes, {
    endpoint: `${nodeA.baseUrl}/api/uploads`,
    token: user.token,
    chunkSize: 64 * KiB,
    abortAfterBytes: bytes.length / 2,
    metadata: { filename: "concert.mp4", filetype: "video/mp4" },
  });
  expect(first.aborted).toBe(true);
  const path = new URL(first.uploadUrl).pathname;
  expect(path).toMatch(/^\/api\/uploads\/u[A-Za-z0-9_-]{21}$/);
  const uploadId = uploadIdOf(path);

  // Node B sees where the upload stopped, though it never took a byte of it.
  const stopped = await head(nodeB, uploadId, user.token);
  expect(stopped.status).toBe(200);
  expect(stopped.offset).toBeGreaterThan(0);
  expect(stopped.offset).toBeLessThan(bytes.length);
  expect(stopped.length).toBe(bytes.length);

  const resumed = await tusUpload(bytes, {
    endpoint: `${nodeB.baseUrl}/api/uploads`,
    uploadUrl: `${nodeB.baseUrl}${path}`,
    token: user.token,
    chunkSize: 64 * KiB,
  });
  expect(resumed.aborted).toBe(false);
  expect(resumed.mediaId).toEqual(expect.any(String));

  for (const client of [user.a, user.b]) {
    const answer = await client.get<{ media: MediaJson }>(`/api/uploads/${uploadId}/media`, { bearer: user.token });
    // The body names what was not found (the upload's outcome or the item) should this ever fail.
    expect({ status: answer.status, body: answer.status === 200 ? "ok" : answer.body }).toEqual({ status: 200, body: "ok" });
    expect(answer.body.media).toMatchObject({ id: resumed.mediaId, kind: "video", mime: "video/mp4", bytes: bytes.length, sha256: sha256(bytes) });
  }
  const { body } = await user.a.get<{ media: MediaJson }>(`/api/uploads/${uploadId}/media`, { bearer: user.token });
  expect(await downloadSha256(body.media.originalUrl!, nodeA.baseUrl)).toBe(sha256(bytes));
  expect(await usedBytesOf(user.b, user.token)).toBe(bytes.length);

  expect(await temporaryKeys()).toEqual([]);
  expect((await bucketKeys()).filter((key) => key.startsWith(`media/${resumed.mediaId}/`))).toEqual([`media/${resumed.mediaId}/original.mp4`]);
  // The finished upload is gone as a tus resource on both nodes.
  expect((await head(nodeA, uploadId, user.token)).status).toBe(404);
  expect((await head(nodeB, uploadId, user.token)).status).toBe(404);
});

describe("two PATCH requests to one upload through both nodes at once", () => {
  async function finishAndCheck(user: SignedUp, uploadId: string, bytes: Buffer, answers: PatchAnswer[]): Promise<void> {
    let mediaId = answers.find((answer) => answer.mediaId)?.mediaId ?? null;
    if (!mediaId) {
      // The state both nodes report is the same, and is a prefix of what was sent.
      const [fromA, fromB] = await Promise.all([head(nodeA, uploadId, user.token), head(nodeB, uploadId, user.token)]);
      expect(fromA).toEqual(fromB);
      expect(fromA.status).toBe(200);
      const offset = fromA.offset!;
      expect(offset).toBeGreaterThanOrEqual(0);
      expect(offset).toBeLessThan(bytes.length);
      const finished = await patch(nodeB, uploadId, user.token, offset, bytes.subarray(offset));
      expect(finished).toMatchObject({ status: 204, offset: bytes.length });
      mediaId = finished.mediaId;
    }
    expect(mediaId).toEqual(expect.any(String));
    const outcome = await user.b.get<{ media: MediaJson }>(`/api/uploads/${uploadId}/media`, { bearer: user.token });
    expect({ status: outcome.status, body: outcome.status === 200 ? "ok" : outcome.body }).toEqual({ status: 200, body: "ok" });
    expect(outcome.body.media).toMatchObject({ id: mediaId, bytes: bytes.length, sha256: sha256(bytes) });
    expect(await downloadSha256(outcome.body.media.originalUrl!, nodeB.baseUrl)).toBe(sha256(bytes));
    expect(await myMediaOf(user.a, user.token)).toHaveLength(1);
    expect(await usedBytesOf(user.a, user.token)).toBe(bytes.length);
    expect(await temporaryKeys()).toEqual([]);
  }

  test("sent whole at the same moment: one is written, the other waits for the lock and is refused for its stale offset; the result is the file", async () => {
    const user = await signUp();
    const bytes = fixture(VIDEO);
    const created = await tusCreate(`${nodeA.baseUrl}/api/uploads`, user.token, bytes.length, { filename: "race.mp4", filetype: "video/mp4" });
    expect(created.status).toBe(201);
    const uploadId = uploadIdOf(created.location!);

    const answers = await Promise.all([patch(nodeA, uploadId, user.token, 0, bytes), patch(nodeB, uploadId, user.token, 0, bytes)]);
    // Never a server error, never two writers: one was written; the other, once it had the lock, found the
    // offset moved (409), or (arriving after the upload was finished and removed) no upload at all (404).
    const written = answers.filter((answer) => answer.status === 204);
    const refused = answers.filter((answer) => answer.status !== 204);
    expect(written).toHaveLength(1);
    expect(written[0]!.offset).toBeGreaterThan(0);
    expect(written[0]!.offset).toBeLessThanOrEqual(bytes.length);
    expect([404, 409]).toContain(refused[0]!.status);
    await finishAndCheck(user, uploadId, bytes, answers);
  });

  test("one still streaming through A when the other arrives through B: A is asked to let go, keeps what it received, and B is refused for its stale offset", async () => {
    const user = await signUp();
    const bytes = fixture(VIDEO);
    const created = await tusCreate(`${nodeA.baseUrl}/api/uploads`, user.token, bytes.length, { filename: "slow.mp4", filetype: "video/mp4" });
    expect(created.status).toBe(201);
    const uploadId = uploadIdOf(created.location!);

    // A slow client: the first 256 KiB at once, then nothing until node B's request has been answered.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slowBody = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new Uint8Array(bytes.subarray(0, 256 * KiB)));
        await held;
        controller.enqueue(new Uint8Array(bytes.subarray(256 * KiB)));
        controller.close();
      },
    });
    const slow = patch(nodeA, uploadId, user.token, 0, slowBody);
    // Wait until node A holds the lock and has taken the first bytes.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const startedAt = Date.now();
    const fast = await patch(nodeB, uploadId, user.token, 0, bytes);
    const waitedMs = Date.now() - startedAt;
    release();
    const slowAnswer = await slow;

    // B asked A (over Redis) to let go, well before B's own lock timeout (30 s): A stopped reading, kept
    // the 256 KiB it had received and answered with that offset; B then had the lock, and its offset 0 was stale.
    expect(slowAnswer).toMatchObject({ status: 204, offset: 256 * KiB, mediaId: null });
    expect(fast).toMatchObject({ status: 409, mediaId: null });
    expect(waitedMs).toBeLessThan(15_000);
    await finishAndCheck(user, uploadId, bytes, [fast, slowAnswer]);
  });
});

test("an upload begun through node A and terminated through node B gives its quota back and leaves no temporary objects", async () => {
  const user = await signUp();
  const bytes = fixture(VIDEO);
  const first = await tusUpload(bytes, {
    endpoint: `${nodeA.baseUrl}/api/uploads`,
    token: user.token,
    chunkSize: 64 * KiB,
    abortAfterBytes: bytes.length / 4,
    metadata: { filename: "cancelled.mp4", filetype: "video/mp4" },
  });
  expect(first.aborted).toBe(true);
  const uploadId = uploadIdOf(first.uploadUrl);
  expect(await usedBytesOf(user.b, user.token)).toBe(bytes.length);
  expect(await temporaryKeys()).toEqual([`${uploadId}.info`, `${uploadId}.part`]);

  const terminated = await fetch(`${nodeB.baseUrl}/api/uploads/${uploadId}`, { method: "DELETE", headers: { ...TUS, Authorization: `Bearer ${user.token}` } });
  expect(terminated.status).toBe(204);
  await eventually(() => usedBytesOf(user.a, user.token), (used) => used === 0);
  expect(await temporaryKeys()).toEqual([]);
  expect((await head(nodeA, uploadId, user.token)).status).toBe(404);
});

test("a multipart upload through node B is stored in S3 and listed through node A", async () => {
  const user = await signUp(nodeB);
  const bytes = fixture("image_formats/png_rgba_alpha.png");
  const answer = await multipartUpload(nodeB.baseUrl, user.token, bytes, "alpha.png", "image/png");
  expect(answer.status).toBe(201);
  const media = answer.body.media!;
  expect(media).toMatchObject({ kind: "image", mime: "image/png", sha256: sha256(bytes), bytes: bytes.length });
  expect(await bucketKeys()).toContain(`media/${media.id}/original.png`);

  const listed = await myMediaOf(user.a, user.token);
  expect(listed.map((item) => item.id)).toEqual([media.id]);
  expect(await downloadSha256(listed[0]!.originalUrl!, nodeA.baseUrl)).toBe(sha256(bytes));
});

test("a refused tus upload (an HTML page declared as image/jpeg) leaves no object, no row and no quota", async () => {
  const user = await signUp();
  const before = await bucketKeys();
  const html = Buffer.from("<!doctype html><html><body><script>alert(1)</script></body></html>");
  const failure = await tusUpload(html, {
    endpoint: `${nodeA.baseUrl}/api/uploads`,
    token: user.token,
    metadata: { filename: "photo.jpg", filetype: "image/jpeg" },
  }).catch((error: { status: number; body: string }) => error);
  expect(failure).toMatchObject({ status: 415 });
  expect(JSON.parse((failure as { body: string }).body)).toMatchObject({ error: { code: "unsupported_type" } });

  expect(await bucketKeys()).toEqual(before);
  expect(await myMediaOf(user.b, user.token)).toEqual([]);
  const me = await user.a.get<{ user: { id: string } }>("/api/users/me", { bearer: user.token });
  const rows = await services.mariadb!.primary.query<{ count: number }>("select count(*) as count from shoal_media.media where owner_id = ?", [me.body.user.id]);
  expect(Number(rows[0]?.count)).toBe(0);
  const reservations = await services.mariadb!.primary.query<{ count: number }>("select count(*) as count from shoal_membership.quota_reservations where user_id = ?", [
    me.body.user.id,
  ]);
  expect(Number(reservations[0]?.count)).toBe(0);
  expect(await usedBytesOf(user.a, user.token)).toBe(0);
  expect(await usedBytesOf(user.b, user.token)).toBe(0);
});

test("the quota held by an abandoned upload is given back by the users service's sweep once the upload expires", async () => {
  // A node whose uploads expire after a second. The sweeps run every 15 minutes; the test runs them on demand.
  const nodeC = await startNode({ ...env, NODE_ID: "uploads-c", SERVICES: "api,users", UPLOAD_EXPIRY_SECONDS: "1" });
  try {
    // The users service's (sessions, quota reservations) and the gateway's (expired tus uploads).
    const sweeps = ["quota-reservation-sweep", "session-sweep", "upload-expiry-sweep"];
    expect(nodeC.runtime.periodicTasks.status().map((task) => task.name).sort()).toEqual(sweeps);
    const user = await signUp(nodeC);
    const client = new HttpClient(nodeC.baseUrl);
    const created = await tusCreate(`${nodeC.baseUrl}/api/uploads`, user.token, 5000, { filename: "later.png", filetype: "image/png" });
    expect(created.status).toBe(201);
    const uploadId = uploadIdOf(created.location!);
    const partial = await patch(nodeC, uploadId, user.token, 0, new Uint8Array(fixture("image_formats/png_rgba_alpha.png").subarray(0, 1000)));
    expect(partial).toMatchObject({ status: 204, offset: 1000 });
    expect(await usedBytesOf(client, user.token)).toBe(5000);
    expect(await usedBytesOf(user.a, user.token)).toBe(5000);
    // The upload's state and the 1000 bytes received so far (less than an S3 part) are in the bucket.
    expect(await temporaryKeys()).toEqual([`${uploadId}.info`, `${uploadId}.part`]);

    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const name of sweeps) expect((await nodeC.runtime.periodicTasks.get(name)?.runNow())?.outcome).toBe("succeeded");
    await eventually(() => usedBytesOf(user.a, user.token), (used) => used === 0);
    await eventually(temporaryKeys, (keys) => keys.length === 0);
    expect([404, 410]).toContain((await head(nodeC, uploadId, user.token)).status);
    // Nor is the upload's state left in Redis (the tus store's metadata cache).
    expect(await nodeC.runtime.redis!.exists(`shoal:tus:upload:${uploadId}`)).toBe(0);
  } finally {
    await stopNode(nodeC);
  }
});

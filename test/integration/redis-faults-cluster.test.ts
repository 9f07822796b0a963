import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import Redis from "ioredis";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { HttpClient, signUpMember } from "../support/http-client";
import type { ApiResponse, SignedUpMember } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { closeAllSockets, instantProcessor, openSocket, uploadImage, within } from "../support/sockets";
import { startTcpProxy } from "../support/tcp-proxy";
import { fixture, sha256, tusUpload } from "../support/uploads";
import type { TcpProxy } from "../support/tcp-proxy";

/**
 * Two api nodes whose only way to Redis is a proxy that can cut, slow down, hang and reset it. What the
 * requirement bounds is how long a request may wait on Redis (1 s): every request here must answer, and
 * within ANSWER_BOUND_MS, a generous margin over that bound on a shared machine. Without command timeouts a
 * request would wait for Redis until the 30 s request timeout.
 */
const ANSWER_BOUND_MS = 5000;
const LOGIN_FAILURE_LIMIT = 3;

let services: TestServices;
let proxy: TcpProxy;
let nodeA: RunningNode;
let nodeB: RunningNode;
let direct: Redis;
let s3: S3Client;
let member: SignedUpMember;
let itemId: string;

interface MediaBody {
  media: { id: string; status: string; title: string | null; sha256?: string };
}

async function timed<T>(request: () => Promise<ApiResponse<T>>): Promise<ApiResponse<T>> {
  const started = Date.now();
  const answer = await request();
  const tookMs = Date.now() - started;
  expect({ answeredWithinBound: tookMs < ANSWER_BOUND_MS, tookMs }).toEqual({ answeredWithinBound: true, tookMs });
  return answer;
}

function api(node: RunningNode): HttpClient {
  return new HttpClient(node.baseUrl, { origin: null });
}

const health = (node: RunningNode) =>
  api(node).get<{ status: string; checks: Record<string, { status: string }> }>("/api/health");

const itemOn = (node: RunningNode) => timed(() => api(node).get<MediaBody>(`/api/media/${itemId}`, { bearer: member.token }));

async function rename(node: RunningNode, title: string): Promise<void> {
  const answer = await timed(() => api(node).request<MediaBody>("PATCH", `/api/media/${itemId}`, { bearer: member.token, json: { title } }));
  expect({ status: answer.status, title: answer.body?.media.title }).toEqual({ status: 200, title });
}

/** Reads the item on node B (filling the cache when it can), then lists the item's entries in the shared cache. */
async function cachedMediaKeys(): Promise<string[]> {
  await itemOn(nodeB);
  return direct.keys(`shoal-cache*media.get*${itemId}*`);
}

async function bothHealthy(): Promise<void> {
  for (const node of [nodeA, nodeB]) await eventually(() => health(node), (answer) => answer.body.status === "ok", 15_000);
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  proxy = await startTcpProxy(services.redis?.port ?? 0);
  direct = new Redis(services.redis?.url ?? "");
  const bucket = services.s3;
  if (!bucket) throw new Error("no S3");
  s3 = new S3Client({
    endpoint: bucket.endpoint,
    region: bucket.region,
    forcePathStyle: bucket.forcePathStyle,
    credentials: { accessKeyId: bucket.accessKeyId, secretAccessKey: bucket.secretAccessKey },
  });
  const env = {
    ...envFor(services),
    REDIS_URL: proxy.url("redis"),
    RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100",
    RATE_LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR: String(LOGIN_FAILURE_LIMIT),
  };
  nodeA = await startNode({ ...env, NODE_ID: "redis-faults-a", SERVICES: "api,users,media,site,processing" }, { processors: { image: instantProcessor } });
  nodeB = await startNode({ ...env, NODE_ID: "redis-faults-b", SERVICES: "api,users,media" });
  await nodeB.broker.waitForServices(["users", "media", "site"], 20_000);
  member = await signUpMember(nodeA.baseUrl, nodeA.publicUrl, { prefix: "redisfault" });
  itemId = await uploadImage(nodeA.baseUrl, member.token);
  await eventually(() => itemOn(nodeA), (answer) => answer.body.media.status === "ready", 30_000);
}, 180_000);

afterAll(async () => {
  closeAllSockets();
  await stopAllNodes();
  direct?.disconnect();
  s3?.destroy();
  await proxy?.close();
  await services?.stop();
});

afterEach(async () => {
  proxy.setDelay(0);
  proxy.restore();
  await bothHealthy();
});

describe("Redis cut off", () => {
  it("serves from the database: sessions resolve, reads see the reader's own writes, health says degraded, and each request answers at once", async () => {
    await rename(nodeA, "before the outage");
    // Node B caches the item as its owner sees it.
    expect((await itemOn(nodeB)).body.media.title).toBe("before the outage");
    expect(await eventually(cachedMediaKeys, (keys) => keys.length > 0)).not.toHaveLength(0);

    proxy.cut();
    for (const node of [nodeA, nodeB]) {
      const answer = await eventually(() => health(node), (report) => report.body.status !== "ok");
      expect({ http: answer.status, status: answer.body.status, cache: answer.body.checks.cache?.status }).toEqual({ http: 200, status: "degraded", cache: "degraded" });
    }
    for (const node of [nodeA, nodeB]) {
      expect((await timed(() => api(node).get("/api/users/me", { bearer: member.token }))).status).toBe(200);
    }
    // The write on A, read back at once on A and on B: both see it (the write mark is out of reach, so from the primary).
    await rename(nodeA, "during the outage");
    expect((await itemOn(nodeA)).body.media.title).toBe("during the outage");
    expect((await itemOn(nodeB)).body.media.title).toBe("during the outage");
    expect((await timed(() => api(nodeB).get("/api/media?scope=mine", { bearer: member.token }))).status).toBe(200);

    // Back: node B must not answer from what it cached before the outage, whose clean never reached Redis.
    proxy.restore();
    await bothHealthy();
    expect((await itemOn(nodeB)).body.media.title).toBe("during the outage");
    expect((await itemOn(nodeA)).body.media.title).toBe("during the outage");
  }, 90_000);

  it("limits sign-in failures on each node by itself (the per-node fallback)", async () => {
    const login = { login: member.username, password: "not the password" };
    proxy.cut();
    await eventually(() => health(nodeA), (report) => report.body.status === "degraded");
    const onA: number[] = [];
    for (let attempt = 0; attempt <= LOGIN_FAILURE_LIMIT; attempt += 1) {
      onA.push((await timed(() => api(nodeA).post("/api/auth/login", login))).status);
    }
    expect(onA).toEqual([...Array<number>(LOGIN_FAILURE_LIMIT).fill(401), 429]);
    // Node B has counted nothing of it: each node grants the full allowance while they cannot share a count.
    expect((await timed(() => api(nodeB).post("/api/auth/login", login))).status).toBe(401);
    // And the account still signs in with its password: a refusal is per guesser, not a lockout of the owner on B.
    expect((await timed(() => api(nodeB).post("/api/auth/login", { login: member.username, password: member.password }))).status).toBe(200);
  }, 60_000);

  it("keeps delivering socket.io events to sockets on the node where they happen", async () => {
    const watched = await openSocket(nodeA.baseUrl, member.token);
    proxy.cut();
    await eventually(() => health(nodeA), (report) => report.body.status === "degraded");
    const form = new FormData();
    form.append("file", new Blob([fixture("exif_jpeg/orientation_6.jpg")], { type: "image/jpeg" }), "during-the-outage.jpg");
    const answer = await fetch(`${nodeA.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${member.token}` }, body: form });
    expect(answer.status).toBe(201);
    const uploaded = ((await answer.json()) as MediaBody).media.id;
    await within(
      eventually(async () => watched.received, (events) => events.some((event) => event.event === "media:ready" && event.payload.media?.id === uploaded), 20_000),
      25_000,
      "media:ready while Redis is cut",
    );
  }, 60_000);

  it("takes a resumable upload begun on one node and finished on the other, leaves nothing of it in the bucket, and its item reaches ready", async () => {
    proxy.cut();
    for (const node of [nodeA, nodeB]) await eventually(() => health(node), (report) => report.body.status === "degraded");
    const bytes = fixture("exif_jpeg/orientation_1.jpg");
    const first = await tusUpload(bytes, {
      endpoint: `${nodeB.baseUrl}/api/uploads`,
      token: member.token,
      chunkSize: 64 * 1024,
      abortAfterBytes: bytes.length / 2,
      metadata: { filename: "resumed-during-the-outage.jpg", filetype: "image/jpeg" },
    });
    expect(first.aborted).toBe(true);
    const path = new URL(first.uploadUrl).pathname;
    const uploadId = path.split("/").pop() ?? "";
    const resumed = await tusUpload(bytes, { endpoint: `${nodeA.baseUrl}/api/uploads`, uploadUrl: `${nodeA.baseUrl}${path}`, token: member.token, chunkSize: 64 * 1024 });
    expect({ aborted: resumed.aborted, mediaId: resumed.mediaId }).toEqual({ aborted: false, mediaId: expect.any(String) });

    // The upload's own objects (its state and unfinished part) are gone: only the item's original remains.
    const page = await s3.send(new ListObjectsV2Command({ Bucket: services.s3?.bucket }));
    expect((page.Contents ?? []).map((object) => object.Key).filter((key) => key?.startsWith(uploadId))).toEqual([]);
    const ready = await eventually(
      () => api(nodeB).get<MediaBody>(`/api/media/${resumed.mediaId}`, { bearer: member.token }),
      (answer) => answer.body.media?.status === "ready",
      30_000,
    );
    expect(ready.body.media.sha256).toBe(sha256(bytes));
  }, 90_000);
});

describe("Redis slow, hanging or flapping", () => {
  it("answers every request while each packet to and from Redis is 500 ms late, and uses the cache again once Redis is fast", async () => {
    proxy.setDelay(500);
    for (let round = 0; round < 3; round += 1) {
      for (const node of [nodeA, nodeB]) {
        expect((await timed(() => api(node).get("/api/users/me", { bearer: member.token }))).status).toBe(200);
        expect((await itemOn(node)).status).toBe(200);
      }
    }
    await rename(nodeB, "while Redis was slow");
    expect((await itemOn(nodeA)).body.media.title).toBe("while Redis was slow");
    expect((await health(nodeA)).body.status).toBe("degraded");
    proxy.setDelay(0);
    await bothHealthy();
    expect((await itemOn(nodeA)).body.media.title).toBe("while Redis was slow");
    expect((await itemOn(nodeB)).body.media.title).toBe("while Redis was slow");
    expect(await eventually(cachedMediaKeys, (keys) => keys.length > 0)).not.toHaveLength(0);
  }, 90_000);

  it("answers every request while Redis accepts connections but never replies", async () => {
    proxy.hang();
    for (let round = 0; round < 3; round += 1) {
      for (const node of [nodeA, nodeB]) {
        expect((await timed(() => api(node).get("/api/users/me", { bearer: member.token }))).status).toBe(200);
        expect((await itemOn(node)).status).toBe(200);
      }
    }
    await rename(nodeA, "while Redis hung");
    expect((await itemOn(nodeB)).body.media.title).toBe("while Redis hung");
    proxy.restore();
    proxy.reset();
    await bothHealthy();
    expect((await itemOn(nodeB)).body.media.title).toBe("while Redis hung");
  }, 90_000);

  it("answers every request while Redis comes and goes, and holds no stale entry once it stays", async () => {
    let title = "";
    for (let flap = 0; flap < 6; flap += 1) {
      if (flap % 2 === 0) proxy.cut();
      else {
        proxy.restore();
        proxy.reset();
      }
      title = `flap ${flap}`;
      await rename(flap % 2 === 0 ? nodeA : nodeB, title);
      for (const node of [nodeA, nodeB]) {
        expect((await itemOn(node)).body.media.title).toBe(title);
        expect((await timed(() => api(node).get("/api/users/me", { bearer: member.token }))).status).toBe(200);
      }
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
    proxy.restore();
    await bothHealthy();
    for (const node of [nodeA, nodeB]) expect((await itemOn(node)).body.media.title).toBe(title);
  }, 120_000);
});

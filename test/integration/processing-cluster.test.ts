import type { Socket } from "socket.io-client";
import { io } from "socket.io-client";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { HttpClient } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture } from "../support/uploads";

interface Progress {
  mediaId: string;
  stage: string;
  percent: number;
}

let services: TestServices;
let gatewayA: RunningNode;
const sockets: Socket[] = [];

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  const env = { ...envFor(services), RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100" };
  // Node A serves the browser; node B holds the catalogue and runs the worker.
  gatewayA = await startNode({ ...env, NODE_ID: "gateway-a", SERVICES: "api,users,site" });
  await startNode({ ...env, NODE_ID: "worker-b", SERVICES: "api,media,processing" });
  await gatewayA.broker.waitForServices(["media", "processing"], 20_000);
}, 120_000);

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await stopAllNodes();
  await services?.stop();
});

/** A new member signed up through node A, with a socket connected there. */
async function signedUpWatcher(username: string): Promise<{ client: HttpClient; body: { token: string }; socket: Socket }> {
  const client = new HttpClient(gatewayA.baseUrl, { origin: gatewayA.publicUrl });
  const { body } = await client.post<{ token: string }>("/api/auth/register", {
    username,
    email: `${username}@example.test`,
    password: "a long enough passphrase",
  });
  const socket = io(gatewayA.baseUrl, { path: "/socket.io", auth: { token: body.token }, transports: ["websocket"], reconnection: false, forceNew: true });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
  return { client, body, socket };
}

test("a photo uploaded through node A is processed by the worker on node B over JetStream, and A's socket sees it happen", async () => {
  const { client, body, socket } = await signedUpWatcher("cluster-watcher");
  const progress: Progress[] = [];
  const ready: Array<{ media: { id: string; status: string; width: number } }> = [];
  socket.on("media:progress", (update: Progress) => progress.push(update));
  socket.on("media:ready", (event: { media: { id: string; status: string; width: number } }) => ready.push(event));

  const form = new FormData();
  form.append("file", new Blob([fixture("exif_jpeg/orientation_5.jpg")]), "portrait.jpg");
  const uploaded = await fetch(`${gatewayA.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${body.token}` }, body: form });
  expect(uploaded.status).toBe(201);
  const { media } = (await uploaded.json()) as { media: { id: string } };

  const [event] = await eventually(async () => ready, (events) => events.length > 0, 60_000);
  expect(event?.media).toMatchObject({ id: media.id, status: "ready", width: 1800 });
  const stages = progress.filter((update) => update.mediaId === media.id).map((update) => update.stage);
  expect(stages[0]).toBe("queued");
  expect(stages).toEqual(expect.arrayContaining(["processing", "storing", "ready"]));

  const item = await client.get<{ media: { status: string; variants: { name: string }[] } }>(`/api/media/${media.id}`, { bearer: body.token });
  expect(item.body.media.status).toBe("ready");
  expect(item.body.media.variants.map((variant) => variant.name).sort()).toEqual(["display", "display-jpeg", "thumb"]);
}, 90_000);

test("with the replica lagging, the owner is told `ready` with the item ready, and reads it ready at once: the worker's writes count as the owner's", async () => {
  const mariadb = services.mariadb!;
  const { client, body, socket } = await signedUpWatcher("lagging-watcher");
  const ready: Array<{ media: { id: string; status: string } }> = [];
  socket.on("media:ready", (event: { media: { id: string; status: string } }) => ready.push(event));

  // A video: its transcode outlasts the moment the replica takes to apply the upload, after which it stops applying.
  const form = new FormData();
  form.append("file", new Blob([fixture("video/webm_vp9_bbb_10s.webm")]), "clip.webm");
  const uploaded = await fetch(`${gatewayA.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${body.token}` }, body: form });
  expect(uploaded.status).toBe(201);
  const { media } = (await uploaded.json()) as { media: { id: string } };
  await mariadb.waitForReplicaCatchUp(0);
  await mariadb.stopReplicaSqlThread(0);
  try {
    const [event] = await eventually(async () => ready, (events) => events.length > 0, 80_000);
    expect(event?.media).toMatchObject({ id: media.id, status: "ready" });
    const item = await client.get<{ media: { status: string } }>(`/api/media/${media.id}`, { bearer: body.token });
    expect(item.body.media.status).toBe("ready");
  } finally {
    await mariadb.startReplicaSqlThread(0);
  }
  await mariadb.waitForReplicaCatchUp(0);
}, 120_000);

test("an image-only worker node (PROCESSING_KINDS=image) does not take video jobs away from the workers that transcode", async () => {
  const env = { ...envFor(services), RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100" };
  await startNode({ ...env, NODE_ID: "images-only", SERVICES: "processing", PROCESSING_KINDS: "image" });
  const client = new HttpClient(gatewayA.baseUrl, { origin: gatewayA.publicUrl });
  const { body } = await client.post<{ token: string }>("/api/auth/register", {
    username: "video-maker",
    email: "video-maker@example.test",
    password: "a long enough passphrase",
  });
  const form = new FormData();
  form.append("file", new Blob([fixture("video/webm_vp9_bbb_10s.webm")]), "small.webm");
  const uploaded = await fetch(`${gatewayA.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${body.token}` }, body: form });
  const { media } = (await uploaded.json()) as { media: { id: string } };
  const ready = await eventually(
    () => client.get<{ media: { status: string; variants: { name: string }[] } }>(`/api/media/${media.id}`, { bearer: body.token }),
    (answer) => answer.body.media.status === "ready",
    60_000,
  );
  expect(ready.body.media.variants.map((variant) => variant.name).sort()).toEqual(["360p", "poster"]);
}, 90_000);

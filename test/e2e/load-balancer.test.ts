/**
 * The cluster from `npm run cluster` (two api nodes behind HAProxy, a core node, two workers, MariaDB with
 * replicas, Redis, NATS, S3), used only through the load balancer's port, as browsers and scripts would.
 * HAProxy's sticky cookie (SHOAL_NODE=<node>) picks the api node a request goes to, and its
 * X-Shoal-Backend header says which node answered.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { io } from "socket.io-client";
import type { Socket } from "socket.io-client";
import * as tus from "tus-js-client";
import { startCluster } from "../../scripts/cluster/launcher";
import type { Cluster } from "../../scripts/cluster/launcher";
import { freePort } from "../../scripts/services/ports";
import type { MediaJson } from "../../lib/media/media-view";
import { ensureWebBuild, launchChromium, signUpInBrowser } from "../support/browser";
import { descendantsOf } from "../support/node-process";
import { eventually } from "../support/nodes";
import { fixture, sha256 } from "../support/uploads";

jest.setTimeout(180_000);

let cluster: Cluster;
let dir: string;
let accounts = 0;

beforeAll(async () => {
  ensureWebBuild();
  dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-lb-"));
  cluster = await startCluster({
    dir,
    port: await freePort(),
    code: "source",
    // A worker killed mid-job leaves its row to the reconciler past this deadline (JetStream's own redelivery waits 30 s).
    nodeEnv: {
      JOB_DEADLINE_SECONDS: "15",
      JOB_RECONCILE_INTERVAL_SECONDS: "5",
      // Every client of this test is one address, and the rolling restart's load is steady.
      RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100",
      RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000",
      RATE_UPLOADS_PER_USER_PER_HOUR: "100000",
    },
  });
}, 300_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
}, 120_000);

const on = (node: string) => ({ Cookie: `SHOAL_NODE=${node}` });

async function call(method: string, route: string, options: { node?: string; token?: string; json?: unknown } = {}) {
  const response = await fetch(`${cluster.url}${route}`, {
    method,
    headers: {
      ...(options.node ? on(options.node) : {}),
      ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}),
      ...(options.json !== undefined ? { "Content-Type": "application/json" } : {}),
    },
    body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
  });
  const text = await response.text();
  return { status: response.status, node: response.headers.get("x-shoal-backend"), body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function signUp(node?: string): Promise<{ token: string; username: string; password: string; node: string | null }> {
  accounts++;
  const account = { username: `lbuser${accounts}`, email: `lbuser${accounts}@example.test`, password: "a sturdy horse battery 42" };
  const answer = await call("POST", "/api/auth/register", { node, json: account });
  expect(answer.status).toBe(201);
  return { token: answer.body.token as string, username: account.username, password: account.password, node: answer.node };
}

function mediaOf(token: string, id: string): Promise<MediaJson> {
  return call("GET", `/api/media/${id}`, { token }).then((answer) => answer.body.media as MediaJson);
}

function readyOrFailed(token: string, id: string, timeoutMs = 90_000): Promise<MediaJson> {
  return eventually(() => mediaOf(token, id), (media) => media?.status === "ready" || media?.status === "failed", timeoutMs);
}

test("an account made through the load balancer signs in on the other api node", async () => {
  const member = await signUp("api-1");
  expect(member.node).toBe("api-1");
  const signIn = await call("POST", "/api/auth/login", { node: "api-2", json: { login: member.username, password: member.password } });
  expect({ status: signIn.status, node: signIn.node }).toEqual({ status: 200, node: "api-2" });
  const me = await call("GET", "/api/users/me", { node: "api-1", token: signIn.body.token as string });
  expect({ status: me.status, node: me.node, username: (me.body.user as { username: string }).username }).toEqual({ status: 200, node: "api-1", username: member.username });
});

test("a person opens the load balancer's URL in a browser, signs up, uploads a video and watches it become ready (socket.io long-polling kept on one node by the sticky cookie)", async () => {
  const browser = await launchChromium();
  try {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(30_000);
    await signUpInBrowser(page, cluster.url, "lbbrowser");
    const cookies = await page.context().cookies(cluster.url);
    expect(cookies.map((cookie) => cookie.name)).toContain("SHOAL_NODE");
    await page.locator("#file-picker").setInputFiles(path.resolve(__dirname, "../fixtures/video/webm_vp9_bbb_10s.webm"));
    const row = page.locator("li.upload-row").filter({ hasText: "webm_vp9_bbb_10s.webm" });
    await row.and(page.locator(".upload-row--ready, .upload-row--failed")).waitFor({ timeout: 150_000 });
    expect(await row.getAttribute("class")).toMatch(/upload-row--ready/);
  } finally {
    await browser.close();
  }
});

test("a tus upload whose PATCHes alternate between the two api nodes finishes with the right SHA-256 and becomes ready", async () => {
  const member = await signUp();
  const photo = fixture("exif_jpeg/orientation_6.jpg");
  const metadata = `filename ${Buffer.from("alternating.jpg").toString("base64")},filetype ${Buffer.from("image/jpeg").toString("base64")}`;
  const created = await fetch(`${cluster.url}/api/uploads`, {
    method: "POST",
    headers: { ...on("api-1"), Authorization: `Bearer ${member.token}`, "Tus-Resumable": "1.0.0", "Upload-Length": String(photo.length), "Upload-Metadata": metadata },
  });
  expect(created.status).toBe(201);
  const uploadUrl = new URL(created.headers.get("location") ?? "", cluster.url).toString();
  const chunk = Math.ceil(photo.length / 4);
  const served: string[] = [];
  let mediaId: string | null = null;
  for (let offset = 0, turn = 0; offset < photo.length; offset += chunk, turn++) {
    const node = turn % 2 === 0 ? "api-2" : "api-1";
    const body = photo.subarray(offset, offset + chunk);
    const patch = await fetch(uploadUrl, {
      method: "PATCH",
      headers: { ...on(node), Authorization: `Bearer ${member.token}`, "Tus-Resumable": "1.0.0", "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
      body,
    });
    expect(patch.status).toBe(204);
    served.push(patch.headers.get("x-shoal-backend") ?? "?");
    mediaId = patch.headers.get("shoal-media-id") ?? mediaId;
  }
  expect(served).toEqual(["api-2", "api-1", "api-2", "api-1"]);
  expect(mediaId).not.toBeNull();
  const media = await readyOrFailed(member.token, mediaId!);
  expect({ status: media.status, sha256: media.sha256 }).toEqual({ status: "ready", sha256: sha256(photo) });
});

test("a socket on one api node receives the progress of an upload made through the other, processed on a worker", async () => {
  const member = await signUp();
  const socket: Socket = io(cluster.url, { path: "/socket.io", auth: { token: member.token }, extraHeaders: on("api-1"), transports: ["polling", "websocket"] });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("connect_error", reject);
    });
    const stages: string[] = [];
    socket.on("media:progress", (update: { stage: string }) => stages.push(update.stage));
    const readyEvent = new Promise<{ media: MediaJson }>((resolve) => socket.once("media:ready", resolve));
    const form = new FormData();
    form.append("file", new Blob([fixture("exif_jpeg/orientation_1.jpg")]), "live.jpg");
    const uploaded = await fetch(`${cluster.url}/api/media`, { method: "POST", headers: { ...on("api-2"), Authorization: `Bearer ${member.token}` }, body: form });
    expect({ status: uploaded.status, node: uploaded.headers.get("x-shoal-backend") }).toEqual({ status: 201, node: "api-2" });
    const { media } = (await uploaded.json()) as { media: MediaJson };
    const ready = await readyEvent;
    expect(ready.media).toMatchObject({ id: media.id, status: "ready" });
    expect(stages).toEqual(expect.arrayContaining(["queued", "processing"]));
  } finally {
    socket.disconnect();
  }
});

test("an api node killed (SIGKILL) in the middle of a tus upload: the client resumes through the load balancer and completes", async () => {
  const member = await signUp();
  const video = fixture("video/mp4_h264_aac51_1080p60.mp4");
  let killed: Promise<void> | undefined;
  const mediaId = await new Promise<string>((resolve, reject) => {
    let id: string | undefined;
    const upload = new tus.Upload(video, {
      endpoint: `${cluster.url}/api/uploads`,
      chunkSize: 128 * 1024,
      retryDelays: [0, 500, 1000, 2000, 4000, 8000],
      headers: { ...on("api-1"), Authorization: `Bearer ${member.token}` },
      metadata: { filename: "resumed.mp4", filetype: "video/mp4" },
      onProgress(sent) {
        if (killed === undefined && sent >= 3 * 128 * 1024) killed = cluster.kill("api-1", "SIGKILL");
      },
      onAfterResponse(_request, response) {
        id = response.getHeader("Shoal-Media-Id") ?? id;
      },
      onSuccess: () => (id ? resolve(id) : reject(new Error("no media id"))),
      onError: reject,
    });
    upload.start();
  });
  expect(killed).toBeDefined();
  await killed;
  const media = await readyOrFailed(member.token, mediaId, 120_000);
  expect({ status: media.status, sha256: media.sha256 }).toEqual({ status: "ready", sha256: sha256(video) });
  await cluster.restart("api-1");
});

test("a worker killed (SIGKILL) in the middle of a transcode: the other worker finishes the item", async () => {
  const member = await signUp();
  const form = new FormData();
  form.append("file", new Blob([fixture("video/mp4_h264_aac51_1080p60.mp4")]), "worker-killed.mp4");
  const uploaded = await fetch(`${cluster.url}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${member.token}` }, body: form });
  expect(uploaded.status).toBe(201);
  const { media } = (await uploaded.json()) as { media: MediaJson };
  const workers = cluster.nodes.filter((node) => node.role === "processing");
  const transcoding = await eventually(
    async () => workers.find((node) => node.pid !== undefined && descendantsOf(node.pid).some((child) => child.argv.some((arg) => /ffmpeg$/.test(arg)))),
    (found) => found !== undefined,
    60_000,
  );
  await cluster.kill(transcoding!.name, "SIGKILL");
  const done = await readyOrFailed(member.token, media.id, 120_000);
  expect(done.status).toBe("ready");
  expect(done.variants.map((variant) => variant.name).sort()).toEqual(["360p", "720p", "poster"]);
  await cluster.restart(transcoding!.name);
});

test("a rolling restart (SIGTERM each api node, start it again, wait for ready) under reads, uploads and open sockets: nothing fails, every socket comes back", async () => {
  const member = await signUp();
  const sockets = Array.from({ length: 6 }, () =>
    io(cluster.url, { path: "/socket.io", auth: { token: member.token }, transports: ["websocket"], reconnectionDelay: 200, reconnectionDelayMax: 1000 }),
  );
  const failures: string[] = [];
  let reads = 0;
  let uploads = 0;
  let running = true;
  const reader = async () => {
    while (running) {
      const answer = await fetch(`${cluster.url}/api/media?scope=public&limit=24`).then(
        async (response) => (response.status === 200 ? 200 : `${response.status} from ${response.headers.get("x-shoal-backend") ?? "haproxy"}: ${(await response.text()).slice(0, 160)}`),
        (error: Error) => error.message,
      );
      reads++;
      if (answer !== 200) failures.push(`read: ${answer}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const uploader = async () => {
    const photo = fixture("exif_jpeg/orientation_5.jpg");
    while (running) {
      await new Promise<void>((resolve) => {
        const upload = new tus.Upload(photo, {
          endpoint: `${cluster.url}/api/uploads`,
          chunkSize: 64 * 1024,
          retryDelays: [0, 300, 1000, 2000, 4000],
          headers: { Authorization: `Bearer ${member.token}` },
          metadata: { filename: `rolling-${uploads}.jpg`, filetype: "image/jpeg" },
          onSuccess: () => resolve(),
          onError: (error) => {
            failures.push(`upload: ${error.message.slice(0, 200)}`);
            resolve();
          },
        });
        upload.start();
      });
      uploads++;
    }
  };
  try {
    await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => (socket.connected ? resolve() : socket.once("connect", () => resolve())))));
    const load = [reader(), reader(), reader(), uploader()];
    for (const node of ["api-1", "api-2"]) {
      await cluster.restart(node);
      // Ready as the load balancer sees it: a request pinned to the node is answered by it (not redispatched).
      await eventually(async () => (await fetch(`${cluster.url}/api/health`, { headers: on(node) })).headers.get("x-shoal-backend"), (answered) => answered === node, 30_000);
    }
    running = false;
    await Promise.all(load);
    expect({ failures: [...new Set(failures)], readsDone: reads > 0, uploadsDone: uploads > 0 }).toEqual({ failures: [], readsDone: true, uploadsDone: true });

    // Every socket is connected again and receives the owner's events.
    await eventually(async () => sockets.filter((socket) => socket.connected).length, (count) => count === sockets.length, 30_000);
    const received = sockets.map((socket) => new Promise<string>((resolve) => socket.once("media:ready", (event: { media: MediaJson }) => resolve(event.media.id))));
    const form = new FormData();
    form.append("file", new Blob([fixture("exif_jpeg/orientation_2.jpg")]), "after-restart.jpg");
    const uploaded = await fetch(`${cluster.url}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${member.token}` }, body: form });
    const { media } = (await uploaded.json()) as { media: MediaJson };
    expect(await Promise.all(received)).toEqual(sockets.map(() => media.id));
  } finally {
    running = false;
    for (const socket of sockets) socket.disconnect();
  }
});

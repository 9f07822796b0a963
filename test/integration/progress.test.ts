import type { Socket } from "socket.io-client";
import { io } from "socket.io-client";
import type { Processor } from "../../lib/jobs/processor";
import { signUpMember } from "../support/http-client";
import type { HttpClient } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture, tusUpload } from "../support/uploads";

interface Progress {
  mediaId: string;
  stage: string;
  percent: number;
}

/** Reports a few steps of progress, slowly enough to be watched, and stores nothing: it tests delivery, not processing. */
const steppingProcessor: Processor = async (_job, context) => {
  for (const percent of [20, 50, 80]) {
    context.reportProgress("processing", percent);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return { width: 2048, height: 1536 };
};

let node: RunningNode;
const sockets: Socket[] = [];

function signUp(name: string): Promise<{ token: string; client: HttpClient }> {
  return signUpMember(node.baseUrl, node.publicUrl, { prefix: name });
}

function connect(auth: Record<string, string>): Socket {
  const socket = io(node.baseUrl, { path: "/socket.io", auth, transports: ["websocket"], reconnection: false, forceNew: true });
  sockets.push(socket);
  return socket;
}

function connected(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
}

beforeAll(async () => {
  node = await startNode({ RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100" }, { processors: { image: steppingProcessor } });
});

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await stopAllNodes();
});

test("the owner watches processing progress live over socket.io; another user sees nothing of it", async () => {
  const owner = await signUp("watcher");
  const stranger = await signUp("stranger");
  const ownerSocket = connect({ token: owner.token });
  const strangerSocket = connect({ token: stranger.token });
  await Promise.all([connected(ownerSocket), connected(strangerSocket)]);
  const seenByOwner: Progress[] = [];
  const seenByStranger: Progress[] = [];
  const readyForOwner: Array<{ media: { id: string; status: string } }> = [];
  ownerSocket.on("media:progress", (update: Progress) => seenByOwner.push(update));
  ownerSocket.on("media:ready", (event: { media: { id: string; status: string } }) => readyForOwner.push(event));
  for (const event of ["media:progress", "media:ready", "media:failed"]) {
    strangerSocket.on(event, (update: Progress) => seenByStranger.push(update));
  }

  const form = new FormData();
  form.append("file", new Blob([fixture("image_formats/png_rgba_alpha.png")], { type: "image/png" }), "alpha.png");
  const uploaded = await fetch(`${node.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${owner.token}` }, body: form });
  expect(uploaded.status).toBe(201);
  const { media } = (await uploaded.json()) as { media: { id: string } };

  const updates = await eventually(
    async () => seenByOwner.filter((update) => update.mediaId === media.id),
    (mine) => mine.some((update) => update.stage === "ready"),
  );
  expect(updates[0]).toMatchObject({ stage: "queued", percent: 0 });
  const stages = updates.map((update) => update.stage);
  expect(stages.indexOf("processing")).toBeLessThan(stages.indexOf("storing"));
  expect(stages.indexOf("storing")).toBeLessThan(stages.indexOf("ready"));
  await eventually(async () => readyForOwner, (events) => events.length > 0);
  expect(readyForOwner[0]?.media).toMatchObject({ id: media.id, status: "ready" });
  const percents = updates.filter((update) => update.stage === "processing").map((update) => update.percent);
  expect(percents).toEqual(expect.arrayContaining([50]));
  expect(percents).toEqual([...percents].sort((a, b) => a - b));
  expect(seenByStranger).toEqual([]);

  const item = await owner.client.get<{ media: { status: string; width: number } }>(`/api/media/${media.id}`, { bearer: owner.token });
  expect(item.body.media).toMatchObject({ status: "ready", width: 2048 });
});

test.each([
  ["no credentials", {}],
  ["a made-up token", { token: "x".repeat(43) }],
])("a socket with %s is refused", async (_what, auth) => {
  const socket = connect(auth);
  await expect(connected(socket)).rejects.toThrow(/unauthenticated/);
});

test("a socket from another site's page is refused even with a valid session cookie", async () => {
  const { token } = await signUp("cookie-holder");
  const socket = io(node.baseUrl, {
    path: "/socket.io",
    transports: ["polling"],
    reconnection: false,
    forceNew: true,
    extraHeaders: { Origin: "https://evil.example", Cookie: `shoal_session=${token}` },
  });
  sockets.push(socket);
  await expect(connected(socket)).rejects.toThrow();
});

test("the bytes of a resumable upload are reported to its owner as they arrive", async () => {
  const owner = await signUp("streamer");
  const socket = connect({ token: owner.token });
  await connected(socket);
  const received: Array<{ uploadId: string; offset: number; size: number }> = [];
  socket.on("upload:progress", (update: { uploadId: string; offset: number; size: number }) => received.push(update));
  const bytes = fixture("video/mp4_h264_aac51_1080p60.mp4");
  await tusUpload(bytes, { endpoint: `${node.baseUrl}/api/uploads`, token: owner.token, chunkSize: 256 * 1024, metadata: { filetype: "video/mp4" } });
  const updates = await eventually(async () => received, (seen) => seen.length > 0);
  expect(updates[0]).toMatchObject({ uploadId: expect.stringMatching(/^u/), size: bytes.length });
  expect(updates.every((update) => update.offset > 0 && update.offset <= bytes.length)).toBe(true);
});

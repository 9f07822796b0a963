/**
 * SIGTERM drains a node: readiness answers 503 at once, a tus PATCH in flight finishes, jobs held by a
 * worker go to another worker at once, and the node exits 0. Nodes run as child processes, stopped
 * with real signals.
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import type { MediaJson } from "../../lib/media/media-view";
import { signUpMember } from "../support/http-client";
import { LISTENING, startNodeProcess, stopAllNodeProcesses } from "../support/node-process";
import type { NodeProcess } from "../support/node-process";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import { fixture, tusCreate } from "../support/uploads";

let services: TestServices;
const dataDirs: string[] = [];

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 0 }, redis: true, nats: true, s3: true });
}, 120_000);

afterAll(async () => {
  await stopAllNodeProcesses();
  await stopAllNodes();
  await services?.stop();
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function freshDataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-drain-"));
  dataDirs.push(dir);
  return dir;
}

function baseUrlOf(node: NodeProcess): string {
  return `http://127.0.0.1:${LISTENING.exec(node.output())?.[1] ?? "0"}`;
}

/** A tus PATCH of `bytes` sent slowly, in 64 kB chunks; `midway` runs once the fourth chunk is on its way (the node is reading the body by then). */
function slowPatch(url: string, token: string, bytes: Buffer, midway: () => void): Promise<{ status: number; offset: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, {
      method: "PATCH",
      headers: {
        Authorization: `Bearer ${token}`,
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": String(bytes.length),
      },
    });
    request.on("response", (response) => {
      response.resume();
      response.on("end", () => resolve({ status: response.statusCode ?? 0, offset: response.headers["upload-offset"] as string | undefined }));
    });
    request.on("error", (error) => reject(Object.assign(error, { sent })));
    const chunk = 64 * 1024;
    let sent = 0;
    const next = () => {
      if (sent >= bytes.length) {
        request.end();
        return;
      }
      request.write(bytes.subarray(sent, sent + chunk));
      if (sent === 3 * chunk) midway();
      sent += chunk;
      setTimeout(next, 40);
    };
    next();
  });
}

test("embedded: SIGTERM in the middle of a tus PATCH answers 503 on readiness at once, finishes the PATCH, exits 0, and the item is processed after a restart", async () => {
  const dataDir = freshDataDir();
  const env = { SHOAL_DATA_DIR: dataDir, SHUTDOWN_TIMEOUT_SECONDS: "30", PROCESSING_KINDS: "video" };
  const node = await startNodeProcess(env);
  const baseUrl = baseUrlOf(node);
  const member = await signUpMember(baseUrl, baseUrl, { prefix: "drainer" });
  // An image with no image worker on this node: it stays `uploaded` until a node that has one starts.
  const photo = fixture("exif_jpeg/orientation_6.jpg");
  const created = await tusCreate(`${baseUrl}/api/uploads`, member.token, photo.length, { filename: "drained.jpg", filetype: "image/jpeg" });
  expect(created.status).toBe(201);
  const uploadUrl = new URL(created.location ?? "", baseUrl).toString();

  let readinessAfterSignal: Promise<number> | undefined;
  const patch = await slowPatch(uploadUrl, member.token, photo, () => {
    process.kill(node.pid, "SIGTERM");
    readinessAfterSignal = new Promise((resolve) => setTimeout(resolve, 100)).then(async () => (await fetch(`${baseUrl}/api/health`)).status);
  });
  expect({ patch, output: patch.status === 204 ? "" : node.output().slice(-3000) }).toEqual({ patch: { status: 204, offset: String(photo.length) }, output: "" });
  expect(await readinessAfterSignal).toBe(503);
  expect(await node.exited).toEqual({ code: 0, signal: null });

  const restarted = await startNodeProcess({ ...env, PROCESSING_KINDS: "image,video,audio" });
  const again = baseUrlOf(restarted);
  const login = await fetch(`${again}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Origin: again },
    body: JSON.stringify({ login: member.username, password: member.password }),
  });
  const { token } = (await login.json()) as { token: string };
  const items = (await (await fetch(`${again}/api/media?scope=mine`, { headers: { Authorization: `Bearer ${token}` } })).json()) as { items: MediaJson[] };
  expect(items.items).toHaveLength(1);
  // Well inside the reconciler's deadline (600 s): the restarted node takes what was waiting at once.
  const ready = await eventually(
    async () => ((await (await fetch(`${again}/api/media/${items.items[0]!.id}`, { headers: { Authorization: `Bearer ${token}` } })).json()) as { media: MediaJson }).media,
    (media) => media.status === "ready" || media.status === "failed",
    30_000,
  );
  expect(ready.status).toBe("ready");
  expect(await restarted.stop()).toEqual({ code: 0, signal: null });
}, 120_000);

test("cluster: SIGTERM on a worker in the middle of a transcode hands the job to the other worker at once, and the worker exits 0", async () => {
  const env = { ...envFor(services), JOB_DEADLINE_SECONDS: "600", SHUTDOWN_TIMEOUT_SECONDS: "20" };
  const gateway = await startNode({ ...env, NODE_ID: "drain-gateway", SERVICES: "api,users,site,media" });
  const workers = await Promise.all(
    ["drain-worker-1", "drain-worker-2"].map((name) => startNodeProcess({ ...env, NODE_ID: name, SERVICES: "processing", WORKER_CONCURRENCY: "1" })),
  );
  await gateway.broker.waitForServices(["processing"], 20_000);
  const member = await signUpMember(gateway.baseUrl, gateway.baseUrl, { prefix: "transcoder" });
  const form = new FormData();
  form.append("file", new Blob([fixture("video/mp4_h264_aac51_1080p60.mp4")]), "clip.mp4");
  const uploaded = await fetch(`${gateway.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${member.token}` }, body: form });
  expect(uploaded.status).toBe(201);
  const { media } = (await uploaded.json()) as { media: MediaJson };

  const isFfmpeg = (argv: readonly string[]) => argv.some((arg) => /ffmpeg$/.test(arg));
  const busy = await eventually(
    async () => workers.find((worker) => worker.descendants().some((child) => isFfmpeg(child.argv))),
    (found) => found !== undefined,
    30_000,
  );
  const other = workers.find((worker) => worker !== busy)!;
  const exit = await busy!.stop(30_000);
  expect(exit).toEqual({ code: 0, signal: null });
  // Abandoned cleanly: its ffmpeg is gone with it, and the log says the job was handed back.
  expect(busy!.output()).toMatch(new RegExp(`${media.id} handed back`));

  // Sooner than JetStream's 30 s ack wait, and far sooner than the reconciler's 600 s deadline: the other worker took it at once.
  const done = await eventually(
    async () => ((await member.client.get<{ media: MediaJson }>(`/api/media/${media.id}`)).body.media),
    (item) => item.status === "ready" || item.status === "failed",
    25_000,
  );
  expect(done.status).toBe("ready");
  expect(other.alive).toBe(true);
}, 150_000);

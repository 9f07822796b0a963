/**
 * An embedded node (one process, the laptop case) killed with SIGKILL in the middle of a transcode, then started
 * again on the same data directory: the item it was working on is taken over at once, not after the reconciler's
 * deadline (JOB_DEADLINE_SECONDS, ten minutes here as by default), which the dead process's last sign of life
 * would otherwise have to outlive.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { MediaJson } from "../../lib/media/media-view";
import { signUpMember } from "../support/http-client";
import { LISTENING, startNodeProcess, stopAllNodeProcesses } from "../support/node-process";
import type { NodeProcess } from "../support/node-process";
import { eventually } from "../support/nodes";
import { fixture } from "../support/uploads";

let dataDir: string;

beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-crash-"));
});

afterAll(async () => {
  await stopAllNodeProcesses();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function baseUrlOf(node: NodeProcess): string {
  return `http://127.0.0.1:${LISTENING.exec(node.output())?.[1] ?? "0"}`;
}

async function mediaOf(baseUrl: string, token: string, id: string): Promise<MediaJson> {
  const answer = await fetch(`${baseUrl}/api/media/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  return ((await answer.json()) as { media: MediaJson }).media;
}

test("embedded: SIGKILL in the middle of a transcode, then a restart: the item is taken over at once and becomes ready, with one set of variants", async () => {
  const env = { SHOAL_DATA_DIR: dataDir, JOB_DEADLINE_SECONDS: "600", WORKER_CONCURRENCY: "1" };
  const node = await startNodeProcess(env);
  const baseUrl = baseUrlOf(node);
  const member = await signUpMember(baseUrl, baseUrl, { prefix: "crashed" });
  const form = new FormData();
  form.append("file", new Blob([fixture("video/mp4_h264_aac51_1080p60.mp4")]), "clip.mp4");
  const uploaded = await fetch(`${baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${member.token}` }, body: form });
  expect(uploaded.status).toBe(201);
  const { media } = (await uploaded.json()) as { media: MediaJson };

  const isFfmpeg = (argv: readonly string[]) => /(^|\/)ffmpeg$/.test(argv[0] ?? "");
  await eventually(async () => node.descendants().some((child) => isFfmpeg(child.argv)), (running) => running, 30_000);
  expect((await mediaOf(baseUrl, member.token, media.id)).status).toBe("processing");
  expect((await node.kill("SIGKILL")).signal).toBe("SIGKILL");

  const restarted = await startNodeProcess(env);
  const again = baseUrlOf(restarted);
  const done = await eventually(
    () => mediaOf(again, member.token, media.id),
    (item) => item.status === "ready" || item.status === "failed",
    90_000,
  );
  expect({ status: done.status, output: done.status === "ready" ? "" : restarted.output().slice(-3000) }).toEqual({ status: "ready", output: "" });
  expect(restarted.output()).toMatch(/took over 1 item\(s\) left 'processing'/);
  // One version of each variant on disk: the dead process's half-written outputs never became objects.
  const stored = fs.readdirSync(path.join(dataDir, "objects", "media", media.id)).filter((name) => !name.startsWith("."));
  expect(stored.map((name) => name.split(".")[0]).sort()).toEqual(["360p", "720p", "original", "poster"]);
  expect(await restarted.stop()).toEqual({ code: 0, signal: null });
}, 180_000);

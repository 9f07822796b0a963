/**
 * Readiness as a load balancer and a person see it: a node answers /api/health 503 `starting` until it
 * can serve, and an upload made the instant it first answers 200 is processed at once; SIGTERM, during
 * start or after it, ends the node cleanly.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { signUpMember } from "../support/http-client";
import { LISTENING, startNodeProcess, stopAllNodeProcesses } from "../support/node-process";
import type { NodeProcess } from "../support/node-process";
import { eventually } from "../support/nodes";
import { fixture, tusUpload } from "../support/uploads";

let services: TestServices;
const dataDirs: string[] = [];

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
}, 180_000);

afterAll(async () => {
  await stopAllNodeProcesses();
  await services?.stop();
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function freshDataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-readiness-"));
  dataDirs.push(dir);
  return dir;
}

function portOf(node: NodeProcess): number {
  return Number(LISTENING.exec(node.output())?.[1]);
}

/** Polls /api/health every 10 ms until the first 200; returns every other answer seen before it. */
async function firstReady(baseUrl: string): Promise<{ before: { status: number; body: unknown }[] }> {
  const before: { status: number; body: unknown }[] = [];
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const answer = await fetch(`${baseUrl}/api/health`).then(
      async (response) => ({ status: response.status, body: (await response.json()) as unknown }),
      () => undefined,
    );
    if (answer?.status === 200) return { before };
    if (answer) before.push(answer);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("the node never answered 200");
}

async function uploadAtFirstReady(env: Record<string, string>): Promise<void> {
  const node = await startNodeProcess({ ...env, JOB_DEADLINE_SECONDS: "600" }, { waitFor: LISTENING });
  const baseUrl = `http://127.0.0.1:${portOf(node)}`;
  const { before } = await firstReady(baseUrl);
  for (const answer of before) expect(answer).toEqual({ status: 503, body: expect.objectContaining({ status: "starting" }) });
  const live = await fetch(`${baseUrl}/api/health/live`);
  expect(live.status).toBe(200);

  const member = await signUpMember(baseUrl, baseUrl, { prefix: "first" });
  const { mediaId } = await tusUpload(fixture("exif_jpeg/orientation_6.jpg"), {
    endpoint: `${baseUrl}/api/uploads`,
    token: member.token,
    metadata: { filename: "first.jpg", filetype: "image/jpeg" },
  });
  // Well inside the reconciler's ten-minute deadline: only a job that reached a worker gets there.
  const item = await eventually(
    () => member.client.get<{ media: { status: string } }>(`/api/media/${mediaId}`),
    (answer) => answer.body.media?.status === "ready" || answer.body.media?.status === "failed",
    60_000,
  );
  expect(item.body.media).toMatchObject({ status: "ready" });
  expect(node.output()).not.toMatch(/could not publish the processing job|Adapter not yet connected/);
  const stopped = await node.stop();
  expect(stopped).toEqual({ code: 0, signal: null });
}

test("embedded: an upload the instant /api/health first says 200 becomes ready", async () => {
  await uploadAtFirstReady({ SHOAL_DATA_DIR: freshDataDir() });
}, 150_000);

test("cluster: an upload the instant /api/health first says 200 becomes ready", async () => {
  await uploadAtFirstReady({ ...envFor(services), SHOAL_DATA_DIR: freshDataDir(), NODE_ID: "ready-cluster" });
}, 150_000);

describe.each([
  ["embedded", () => ({ SHOAL_DATA_DIR: freshDataDir() })],
  ["cluster", () => ({ ...envFor(services), SHOAL_DATA_DIR: freshDataDir() })],
])("%s: SIGTERM", (_mode, envOf) => {
  test("while the node is starting, it exits 0 with no unhandled error", async () => {
    const node = await startNodeProcess(envOf(), { waitFor: LISTENING });
    const exit = await node.stop(20_000);
    expect({ exit, output: node.output() }).toEqual({ exit: { code: 0, signal: null }, output: expect.not.stringMatching(/Unhandled|Connection is closed|uncaught/i) });
  }, 60_000);

  test("once it serves, it exits 0 with no unhandled error", async () => {
    const node = await startNodeProcess(envOf());
    await firstReady(`http://127.0.0.1:${portOf(node)}`);
    const exit = await node.stop(20_000);
    expect({ exit, output: node.output() }).toEqual({ exit: { code: 0, signal: null }, output: expect.not.stringMatching(/Unhandled|Connection is closed|uncaught/i) });
  }, 60_000);
});

/**
 * The bucket's outages, on the S3 adapters against a real S3-compatible server behind a TCP proxy: once a call finds
 * that the store does not answer, calls fail at once with 503 instead of each trying it (a hanging store: waiting out
 * its silence, 30 s a try), for every client of the bucket (objects and resumable uploads); once it answers again,
 * calls go through without a restart. (A hanging store: test/integration/s3-faults-cluster.test.ts.)
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import type { StorageSettings } from "../../config/settings";
import { S3Storage } from "../../lib/storage/s3-storage";
import { describeStorageFailure, StorageUnavailableError } from "../../lib/storage/s3-unreachable";
import { createUploadStore } from "../../lib/uploads/tus-stores";
import type { UploadStore } from "../../lib/uploads/tus-stores";
import { startS3 } from "../../scripts/services";
import type { S3Server } from "../../scripts/services";
import { eventually } from "../support/nodes";
import { startTcpProxy } from "../support/tcp-proxy";
import type { TcpProxy } from "../support/tcp-proxy";

const KEPT = "outage/kept.txt";
const CALLS = 20;

let s3: S3Server;
let proxy: TcpProxy;
let storage: S3Storage;
let uploads: UploadStore;
let scratch: string;

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startTcpProxy(Number(new URL(s3.endpoint).port));
  const settings: Extract<StorageSettings, { kind: "s3" }> = {
    kind: "s3",
    endpoint: proxy.url("http"),
    region: s3.region,
    bucket: s3.bucket,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
    unsignedPayload: false,
  };
  storage = new S3Storage(settings);
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-s3-outage-"));
  uploads = createUploadStore(settings, scratch, undefined, 60_000, storage.outage);
  await storage.put(KEPT, Readable.from([Buffer.from("kept")]), "text/plain");
}, 60_000);

afterEach(async () => {
  proxy.restore();
  await eventually(() => Promise.resolve(storage.outage.known), (known) => !known, 20_000);
});

afterAll(async () => {
  await storage?.close();
  await proxy?.close();
  await s3?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** Runs CALLS object reads and resumable-upload checks at once; answers how many new connections reached the proxy. */
async function connectionsFor(expectEach: (call: Promise<unknown>) => Promise<void>): Promise<number> {
  const before = proxy.connections;
  await Promise.all(
    Array.from({ length: CALLS }, (_, index) => expectEach(index % 2 === 0 ? storage.head(KEPT) : storage.get(KEPT).then(({ body }) => body.destroy()))),
  );
  return proxy.connections - before;
}

function checkResumable(): Promise<unknown> {
  if (!uploads.checkResumable) throw new Error("the S3 upload store has no resumable check");
  return uploads.checkResumable();
}

const refusedAsUnavailable = (call: Promise<unknown>) => expect(call).rejects.toBeInstanceOf(StorageUnavailableError);

test("a store that refuses connections: the first call that finds it begins the outage, and calls after it fail with 503 unsent", async () => {
  proxy.cut();
  await refusedAsUnavailable(storage.head(KEPT));
  expect(storage.outage.known).toBe(true);

  // Without the outage each call would connect, and the SDK try once more: 2 × CALLS connections. The probes: at most 2.
  expect(await connectionsFor(refusedAsUnavailable)).toBeLessThanOrEqual(2);
  const before = proxy.connections;
  await refusedAsUnavailable(storage.put("outage/new.txt", Readable.from([Buffer.from("new")]), "text/plain"));
  // The health check, and the resumable-upload store's own client on the same bucket, know of it too, and name its cause.
  const cause = describeStorageFailure(storage.outage.reason);
  await expect(storage.check()).resolves.toMatchObject({ status: "down", error: cause });
  await expect(checkResumable()).resolves.toMatchObject({ status: "down", failedCall: "CreateMultipartUpload", error: expect.stringContaining(cause) });
  expect(proxy.connections - before).toBeLessThanOrEqual(2);
}, 60_000);

test("once the store answers again, a probe ends the outage, and objects and resumable uploads are served without a restart", async () => {
  proxy.cut();
  await refusedAsUnavailable(storage.head(KEPT));
  expect(storage.outage.known).toBe(true);

  proxy.restore();
  await eventually(() => Promise.resolve(storage.outage.known), (known) => !known, 20_000);
  await expect(storage.head(KEPT)).resolves.toMatchObject({ bytes: 4 });
  await expect(storage.check()).resolves.toMatchObject({ status: "ok" });
  await expect(checkResumable()).resolves.toMatchObject({ status: "ok", multipartUploads: "ok" });
}, 60_000);

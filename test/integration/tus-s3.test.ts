/**
 * Resumable uploads on S3 (cluster mode's store) against s3rver: the start-up check of the multipart calls
 * tus needs, with the `uploads` health check and log it feeds, and what a store that fails answers and logs.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { parseSettings } from "../../config/settings";
import type { StorageSettings, UploadSettings } from "../../config/settings";
import type { CheckResult, HealthCheck } from "../../lib/health";
import { MemoryExpiringStore } from "../../lib/expiring-store";
import { checkMultipartUploads, s3ClientConfig } from "../../lib/storage/s3-client";
import { S3Storage } from "../../lib/storage/s3-storage";
import { UploadGateway } from "../../lib/uploads/upload-gateway";
import { startS3 } from "../../scripts/services";
import type { S3Server } from "../../scripts/services";
import { fixture } from "../support/uploads";
import { ownerOf, recordingLogger, requestIdOf, serve, TUS_PATH, tusFetch } from "../support/tus-harness";
import type { Served } from "../support/tus-harness";

const OWNER = "owner_s3";

let s3: S3Server;
let uploads: UploadSettings;
let scratch: string;
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  s3 = await startS3();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-tus-s3-"));
  uploads = parseSettings({ SHOAL_DATA_DIR: scratch, PORT: "0" }).uploads;
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

afterAll(async () => {
  await s3.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

function storageSettings(overrides: { bucket?: string; endpoint?: string } = {}): Extract<StorageSettings, { kind: "s3" }> {
  return {
    kind: "s3",
    endpoint: overrides.endpoint ?? s3.endpoint,
    region: s3.region,
    bucket: overrides.bucket ?? s3.bucket,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
    unsignedPayload: false,
  };
}

function clientFor(settings: Extract<StorageSettings, { kind: "s3" }>): S3Client {
  const client = new S3Client(s3ClientConfig(settings));
  closers.push(() => client.destroy());
  return client;
}

/** Multipart uploads s3rver holds in progress (begun and neither completed nor aborted). */
function uploadsInProgress(bucket = s3.bucket): string[] {
  const dir = path.join(s3.dir, bucket, "._S3rver_uploads");
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

/** s3rver behind a proxy that answers one kind of request 501, as a store without that call would. */
async function s3Without(refuses: (req: http.IncomingMessage) => boolean): Promise<string> {
  const target = new URL(s3.endpoint);
  const proxy = http.createServer((req, res) => {
    if (refuses(req)) {
      req.resume();
      res.writeHead(501, { "Content-Type": "application/xml" }).end("<Error><Code>NotImplemented</Code><Message>Not implemented</Message></Error>");
      return;
    }
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  closers.push(() => new Promise<void>((resolve) => (proxy.closeAllConnections(), proxy.close(() => resolve()))));
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

const isListParts = (req: http.IncomingMessage) => req.method === "GET" && new URL(req.url ?? "/", "http://s3").searchParams.has("uploadId");

interface GatewayOnS3 {
  readonly served: Served;
  readonly log: ReturnType<typeof recordingLogger>;
  readonly checks: Map<string, HealthCheck>;
}

/** An UploadGateway on the given S3 settings, served over HTTP, with its health checks and log kept. */
async function gatewayOn(settings: Extract<StorageSettings, { kind: "s3" }>): Promise<GatewayOnS3> {
  const log = recordingLogger();
  const checks = new Map<string, HealthCheck>();
  const storage = new S3Storage(settings);
  const gateway = new UploadGateway({
    uploads,
    storageSettings: settings,
    storage,
    redis: undefined,
    catalogue: {
      reserveQuota: async () => undefined,
      commitReservation: async () => undefined,
      releaseReservation: async () => undefined,
      releaseQuota: async () => undefined,
      createMedia: async () => ({ media: { id: "m_1" }, duplicate: false }),
    },
    consumeUpload: async () => undefined,
    outcomes: new MemoryExpiringStore(),
    ownerOf,
    received: () => undefined,
    log,
    requestIdOf,
    registerHealthCheck: (name, check) => checks.set(name, check),
  });
  const served = await serve((req, res) => gateway.handleTus(req, res));
  closers.push(async () => {
    await served.close();
    gateway.close();
    await storage.close();
  });
  return { served, log, checks };
}

describe("the check of the multipart calls resumable uploads make", () => {
  test("passes against a store that answers them all, and leaves no upload in progress", async () => {
    const result = await checkMultipartUploads(clientFor(storageSettings()), s3.bucket);
    expect(result).toMatchObject({ status: "ok", bucket: s3.bucket });
    expect(uploadsInProgress()).toEqual([]);
  });

  test("fails at CreateMultipartUpload when the bucket does not exist", async () => {
    const result = await checkMultipartUploads(clientFor(storageSettings({ bucket: "no-such-bucket" })), "no-such-bucket");
    expect(result).toMatchObject({ status: "down", failedCall: "CreateMultipartUpload", error: expect.stringMatching(/^CreateMultipartUpload failed.*NoSuchBucket/) });
  });

  test("names ListParts when the store does not answer it, and aborts the upload it began", async () => {
    const endpoint = await s3Without(isListParts);
    const result = await checkMultipartUploads(clientFor(storageSettings({ endpoint })), s3.bucket);
    expect(result).toMatchObject({ status: "down", failedCall: "ListParts", error: expect.stringMatching(/^ListParts failed/) });
    expect(uploadsInProgress()).toEqual([]);
  });
});

describe("the upload gateway on S3", () => {
  test("reports a store that answers every call as a healthy `uploads` check, and logs nothing", async () => {
    const { checks, log } = await gatewayOn(storageSettings());
    const check = checks.get("uploads");
    expect(check).toBeDefined();
    expect(await check!()).toMatchObject({ status: "ok" });
    expect(log.entries).toEqual([]);
  });

  test("says at start, in the log and in health, which call a store without ListParts fails", async () => {
    const endpoint = await s3Without(isListParts);
    const { checks, log } = await gatewayOn(storageSettings({ endpoint }));
    const result: CheckResult = await checks.get("uploads")!();
    expect(result).toMatchObject({ status: "down", failedCall: "ListParts", error: expect.stringContaining("ListParts failed") });
    expect(log.entries).toEqual([{ level: "error", message: expect.stringContaining("ListParts failed"), details: [] }]);
  });

  test("an upload sent in parts is completed through the S3 store and handed to the catalogue", async () => {
    const { served, log } = await gatewayOn(storageSettings());
    const bytes = fixture("image_formats/png_rgba_alpha.png");
    const created = await tusFetch(served.baseUrl, OWNER, "POST", TUS_PATH, {
      "Upload-Length": String(bytes.length),
      "Upload-Metadata": `filetype ${btoa("image/png")},title ${Buffer.from("Été").toString("base64")}`,
    });
    expect(created.status).toBe(201);
    const location = created.headers.get("location")!;
    const half = Math.floor(bytes.length / 2);
    const octets = { "Content-Type": "application/offset+octet-stream" };
    const first = await tusFetch(served.baseUrl, OWNER, "PATCH", location, { ...octets, "Upload-Offset": "0" }, bytes.subarray(0, half));
    expect(first.status).toBe(204);
    const last = await tusFetch(served.baseUrl, OWNER, "PATCH", location, { ...octets, "Upload-Offset": String(half) }, bytes.subarray(half));
    expect({ status: last.status, mediaId: last.headers.get("shoal-media-id") }).toEqual({ status: 204, mediaId: "m_1" });
    expect(log.entries).toEqual([]);
  });

  test("a bucket that is gone: creating an upload answers the generic JSON 500, logged with the request id and the store's error", async () => {
    const { served, log, checks } = await gatewayOn(storageSettings({ bucket: "removed-bucket" }));
    expect(await checks.get("uploads")!()).toMatchObject({ status: "down", failedCall: "CreateMultipartUpload" });

    const answer = await tusFetch(served.baseUrl, OWNER, "POST", TUS_PATH, {
      "Upload-Length": "1000",
      "Upload-Metadata": `filetype ${btoa("image/png")}`,
      "X-Test-Request": "req-s3-create",
    });
    expect(answer.status).toBe(500);
    expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await answer.json()).toEqual({ error: { code: "internal", message: expect.stringContaining("logged"), fields: {} } });
    const logged = log.entries.filter((entry) => entry.message.includes("req-s3-create"));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: "error" });
    expect((logged[0]!.details[0] as Error).name).toBe("NoSuchBucket");
    expect((logged[0]!.details[0] as Error).stack).toMatch(/\n\s+at /);
  });

  test("an upload whose bucket went away meanwhile answers 500 (logged), not 404 (which tells a client to start over)", async () => {
    const bucket = "vanishing-bucket";
    await clientFor(storageSettings()).send(new CreateBucketCommand({ Bucket: bucket }));
    const { served } = await gatewayOn(storageSettings({ bucket }));
    const created = await tusFetch(served.baseUrl, OWNER, "POST", TUS_PATH, { "Upload-Length": "1000", "Upload-Metadata": `filetype ${btoa("image/png")}` });
    expect(created.status).toBe(201);
    const location = created.headers.get("location")!;
    expect((await tusFetch(served.baseUrl, OWNER, "HEAD", location)).status).toBe(200);

    fs.rmSync(path.join(s3.dir, bucket), { recursive: true });
    // Another node, which has not seen this upload yet, is asked about it.
    const other = await gatewayOn(storageSettings({ bucket }));
    const head = await tusFetch(other.served.baseUrl, OWNER, "HEAD", location, { "X-Test-Request": "req-s3-head" });
    expect(head.status).toBe(500);
    expect(other.log.entries.filter((entry) => entry.message.includes("req-s3-head"))).toHaveLength(1);
  });
});

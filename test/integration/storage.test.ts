/**
 * One behaviour suite for both object storage drivers: LocalStorage in a temporary directory (its signed
 * URLs served by the file server on a loopback port) and S3Storage against a private s3rver.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { NotFoundError } from "../../lib/errors";
import { createFileServer } from "../../lib/http/file-server";
import { LocalStorage } from "../../lib/storage/local-storage";
import { InvalidObjectKeyError, RangeNotSatisfiableError } from "../../lib/storage/storage-rules";
import { mediaPrefix, originalKey, variantKey } from "../../lib/storage/object-keys";
import type { ObjectStorage, StagedContent } from "../../lib/storage/object-storage";
import { HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { s3ClientConfig } from "../../lib/storage/s3-client";
import { S3Storage } from "../../lib/storage/s3-storage";
import { UrlSigner } from "../../lib/storage/signed-url";
import { startServices } from "../../scripts/services";
import { newMediaId, readAll, streamOf } from "../support/byte-streams";
import { sha256 } from "../support/uploads";

const SECRET = randomBytes(32).toString("base64url");
const MiB = 1024 * 1024;

interface Harness {
  readonly storage: ObjectStorage;
  /** Puts bytes where the upload store keeps a finished upload (a file beside the objects, or an object in the bucket). */
  stage(data: Buffer): Promise<{ staged: StagedContent; exists(): Promise<boolean> }>;
  /** What a relative signed URL is resolved against. */
  readonly baseUrl: string;
  stop(): Promise<void>;
}

interface Driver {
  readonly name: string;
  open(): Promise<Harness>;
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const DRIVERS: readonly Driver[] = [
  {
    name: "LocalStorage",
    async open() {
      const root = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-storage-"));
      const storage = new LocalStorage(path.join(root, "objects"), new UrlSigner(SECRET));
      const server = http.createServer(createFileServer({ storage, secret: SECRET }));
      const baseUrl = await listen(server);
      const uploads = path.join(root, "uploads");
      await fs.promises.mkdir(uploads);
      return {
        storage,
        baseUrl,
        async stage(data) {
          const file = path.join(uploads, `u${randomBytes(8).toString("hex")}`);
          await fs.promises.writeFile(file, data);
          return {
            staged: { kind: "file", path: file },
            exists: async () => fs.existsSync(file),
          };
        },
        async stop() {
          await closeServer(server);
          await fs.promises.rm(root, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: "S3Storage",
    async open() {
      const services = await startServices({ s3: true });
      const s3 = services.s3!;
      const storage = new S3Storage({
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: s3.bucket,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        forcePathStyle: s3.forcePathStyle,
        // The SDK's own payload hashing is what the cluster's other tests use (http endpoints); this suite signs without it.
        unsignedPayload: true,
      });
      const client = new S3Client(s3ClientConfig(s3));
      return {
        storage,
        baseUrl: s3.endpoint,
        async stage(data) {
          const key = `u${randomBytes(8).toString("hex")}`;
          await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: data, ContentType: "text/html" }));
          return {
            staged: { kind: "object", key },
            exists: async () =>
              client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key })).then(
                () => true,
                () => false,
              ),
          };
        },
        async stop() {
          client.destroy();
          await storage.close();
          await services.stop();
        },
      };
    },
  },
];

describe.each(DRIVERS)("$name", (driver) => {
  let harness: Harness;
  let storage: ObjectStorage;

  beforeAll(async () => {
    harness = await driver.open();
    storage = harness.storage;
  });

  afterAll(async () => {
    await harness?.stop();
  });

  it("is healthy", async () => {
    await expect(storage.check()).resolves.toMatchObject({ status: "ok" });
  });

  it("stores a 5 MB stream of unknown length and reads it back byte for byte", async () => {
    const data = randomBytes(5_000_000);
    const key = originalKey(newMediaId(), "jpg");

    const info = await storage.put(key, streamOf(data), "image/jpeg");
    expect(info).toMatchObject({ key, bytes: data.length, contentType: "image/jpeg" });
    expect(info.etag).toMatch(/^".+"$/);

    const stored = await storage.get(key);
    // What put answered is what a reader finds; only the date is not known to put on S3.
    expect(stored.info).toMatchObject({ key: info.key, bytes: info.bytes, contentType: info.contentType, etag: info.etag });
    // Not toBeInstanceOf(Date): fs.Stats makes its Dates in Node's realm, not in the test's.
    expect(Math.abs(stored.info.lastModified.getTime() - Date.now())).toBeLessThan(60_000);
    expect(sha256(await readAll(stored.body))).toBe(sha256(data));
  });

  it("stores a 17 MiB stream (three 8 MiB parts on S3) byte for byte, and reads ranges across part boundaries", async () => {
    const data = randomBytes(17 * MiB);
    const key = variantKey(newMediaId(), "display", "mp4");

    await expect(storage.put(key, streamOf(data), "video/mp4")).resolves.toMatchObject({ bytes: data.length });
    expect(sha256(await readAll((await storage.get(key)).body))).toBe(sha256(data));

    const across = await storage.get(key, { start: 8 * MiB - 10, end: 8 * MiB + 9 });
    expect(await readAll(across.body)).toEqual(data.subarray(8 * MiB - 10, 8 * MiB + 10));
  });

  it("stores a gradual 11 MiB stream (three 5 MiB parts on S3) byte for byte", async () => {
    const data = randomBytes(11 * MiB);
    const key = variantKey(newMediaId(), "display", "mp4");
    await expect(storage.put(key, streamOf(data), "video/mp4", { gradual: true })).resolves.toMatchObject({ bytes: data.length });
    expect(sha256(await readAll((await storage.get(key)).body))).toBe(sha256(data));
  });

  it("adopts a finished upload's bytes as an object, with the content type it is given (not the one staged with it)", async () => {
    const data = randomBytes(3 * MiB + 17);
    const { staged, exists } = await harness.stage(data);
    const key = originalKey(newMediaId(), "mp4");
    const info = await storage.adopt(staged, key, "video/mp4");
    expect(info).toMatchObject({ key, bytes: data.length, contentType: "video/mp4" });
    const { info: read, body } = await storage.get(key);
    expect(read.contentType).toBe("video/mp4");
    expect(sha256(await readAll(body))).toBe(sha256(data));
    // A file is moved; an object is copied, and its upload store deletes the original.
    expect(await exists()).toBe(staged.kind === "object");
  });

  it("fails to adopt staged bytes that are not there, leaving no object", async () => {
    const { staged } = await harness.stage(Buffer.from("x"));
    const missing: StagedContent = staged.kind === "file" ? { kind: "file", path: `${staged.path}-gone` } : { kind: "object", key: `${staged.key}-gone` };
    const mediaId = newMediaId();
    await expect(storage.adopt(missing, originalKey(mediaId, "jpg"), "image/jpeg")).rejects.toThrow();
    expect(await storage.list(mediaPrefix(mediaId))).toEqual([]);
  });

  it("reads inclusive byte ranges; an end past the object is cut to it; a start past it is 416", async () => {
    const data = randomBytes(1000);
    const key = originalKey(newMediaId(), "webp");
    await storage.put(key, streamOf(data), "image/webp");

    const first = await storage.get(key, { start: 0, end: 99 });
    expect(first.info).toMatchObject({ key, bytes: 1000, contentType: "image/webp" });
    expect(await readAll(first.body)).toEqual(data.subarray(0, 100));

    expect(await readAll((await storage.get(key, { start: 500, end: 500 })).body)).toEqual(data.subarray(500, 501));
    expect(await readAll((await storage.get(key, { start: 900, end: 5000 })).body)).toEqual(data.subarray(900));

    const beyond = storage.get(key, { start: 1000, end: 1100 });
    await expect(beyond).rejects.toBeInstanceOf(RangeNotSatisfiableError);
    await expect(storage.get(key, { start: 1000, end: 1100 })).rejects.toMatchObject({ status: 416 });
    await expect(storage.get(key, { start: 10, end: 5 })).rejects.toBeInstanceOf(RangeNotSatisfiableError);
  });

  it("head describes an object with a validator that changes with its content; a missing key is undefined", async () => {
    const key = originalKey(newMediaId(), "png");
    expect(await storage.head(key)).toBeUndefined();

    const stored = await storage.put(key, streamOf(Buffer.from("first version")), "image/png");
    const head = await storage.head(key);
    expect(head).toMatchObject({ key: stored.key, bytes: stored.bytes, contentType: stored.contentType, etag: stored.etag });
    expect(head).toMatchObject({ key, bytes: 13, contentType: "image/png" });
    expect(await storage.head(key)).toEqual(head);

    const replaced = await storage.put(key, streamOf(Buffer.from("second version")), "image/png");
    expect(replaced.bytes).toBe(14);
    expect(replaced.etag).not.toBe(stored.etag);
    expect((await storage.head(key))?.etag).toBe(replaced.etag);
  });

  it("lists the objects under a prefix in key order, and deletePrefix deletes those and no others", async () => {
    const id = newMediaId();
    const other = newMediaId();
    const keys = [originalKey(id, "jpg"), variantKey(id, "thumb", "webp"), variantKey(id, "display", "webp")];
    for (const key of keys) await storage.put(key, streamOf(Buffer.from(key)), "image/webp");
    await storage.put(originalKey(other, "jpg"), streamOf(Buffer.from("other")), "image/jpeg");

    const listed = await storage.list(mediaPrefix(id));
    expect(listed.map((info) => info.key)).toEqual([...keys].sort());
    for (const info of listed) expect(info).toMatchObject({ bytes: info.key.length, contentType: "image/webp" });
    // A prefix is a string prefix, as in S3: the start of a segment matches too.
    expect((await storage.list(`media/${id.slice(0, 20)}`)).map((info) => info.key)).toEqual([...keys].sort());

    expect(await storage.deletePrefix(mediaPrefix(id))).toBe(3);
    expect(await storage.list(mediaPrefix(id))).toEqual([]);
    expect(await storage.deletePrefix(mediaPrefix(id))).toBe(0);
    expect((await storage.list(mediaPrefix(other))).map((info) => info.key)).toEqual([originalKey(other, "jpg")]);
  });

  it("refuses to delete an empty prefix (everything)", async () => {
    await expect(storage.deletePrefix("")).rejects.toBeInstanceOf(InvalidObjectKeyError);
  });

  it("deletes idempotently", async () => {
    const key = originalKey(newMediaId(), "jpg");
    await storage.put(key, streamOf(Buffer.from("bytes")), "image/jpeg");
    await storage.delete(key);
    expect(await storage.head(key)).toBeUndefined();
    await expect(storage.delete(key)).resolves.toBeUndefined();
    await expect(storage.delete(originalKey(newMediaId(), "jpg"))).resolves.toBeUndefined();
  });

  it("throws NotFoundError for a missing object", async () => {
    await expect(storage.get(originalKey(newMediaId(), "jpg"))).rejects.toBeInstanceOf(NotFoundError);
    await expect(storage.get(originalKey(newMediaId(), "jpg"), { start: 0, end: 10 })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("leaves no object when the source stream fails half-way, and an existing object unchanged", async () => {
    const id = newMediaId();
    const key = originalKey(id, "jpg");
    const failure = new Error("client went away");
    const data = randomBytes(5_000_000);

    await expect(storage.put(key, streamOf(data, { failAfter: 2_500_000, failure }), "image/jpeg")).rejects.toBe(failure);
    expect(await storage.list(mediaPrefix(id))).toEqual([]);
    expect(await storage.head(key)).toBeUndefined();

    const original = randomBytes(2000);
    await storage.put(key, streamOf(original), "image/jpeg");
    await expect(storage.put(key, streamOf(data, { failAfter: 2_500_000, failure }), "image/jpeg")).rejects.toBe(failure);
    expect(await readAll((await storage.get(key)).body)).toEqual(original);
    expect((await storage.list(mediaPrefix(id))).map((info) => info.key)).toEqual([key]);
  });

  it("leaves no object when the source fails after the first 8 MiB part went up", async () => {
    const id = newMediaId();
    const failure = new Error("client went away");
    const put = storage.put(originalKey(id, "mp4"), streamOf(randomBytes(20 * MiB), { failAfter: 12 * MiB, failure }), "video/mp4");
    await expect(put).rejects.toBe(failure);
    expect(await storage.list(mediaPrefix(id))).toEqual([]);
  });

  it("does not show an object while it is being written", async () => {
    const id = newMediaId();
    const key = originalKey(id, "jpg");
    const source = new PassThrough();
    const put = storage.put(key, source, "image/jpeg");
    source.write(randomBytes(MiB));
    await new Promise((resolve) => setTimeout(resolve, 200));

    expect(await storage.head(key)).toBeUndefined();
    expect(await storage.list(mediaPrefix(id))).toEqual([]);
    await expect(storage.get(key)).rejects.toBeInstanceOf(NotFoundError);

    source.end(randomBytes(MiB));
    await expect(put).resolves.toMatchObject({ bytes: 2 * MiB });
    expect(await storage.head(key)).toMatchObject({ bytes: 2 * MiB });
  });

  it("refuses keys that could leave the store or name its internal files", async () => {
    const badKeys = [
      "",
      "../outside.jpg",
      "media/../../outside.jpg",
      "media/x/..",
      "/etc/passwd",
      "media\\x\\original.jpg",
      "media/x\0/original.jpg",
      "media//original.jpg",
      "media/x/",
      ".hidden",
      "media/x/.original.jpg.meta.json",
      "media/x/line\nbreak.jpg",
      `media/${"a".repeat(1100)}`,
    ];
    for (const key of badKeys) {
      const body = streamOf(Buffer.from("x"));
      await expect(storage.put(key, body, "image/jpeg")).rejects.toBeInstanceOf(InvalidObjectKeyError);
      expect(body.destroyed).toBe(true);
      await expect(storage.get(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
      await expect(storage.head(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
      await expect(storage.delete(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
      await expect(storage.signedUrl(key, { expiresInSeconds: 60 })).rejects.toBeInstanceOf(InvalidObjectKeyError);
    }
    for (const prefix of ["../", "media/../", "/", "media\\", "media//x"]) {
      await expect(storage.list(prefix)).rejects.toBeInstanceOf(InvalidObjectKeyError);
      await expect(storage.deletePrefix(prefix)).rejects.toBeInstanceOf(InvalidObjectKeyError);
    }
  });

  it("refuses a content type that could break a header", async () => {
    const body = streamOf(Buffer.from("x"));
    await expect(storage.put(originalKey(newMediaId(), "jpg"), body, "image/jpeg\r\nX-Evil: 1")).rejects.toThrow(TypeError);
  });

  // For S3 this shows that the presigned URL is well-formed and usable by a plain client. s3rver does not
  // verify signatures, so it does not show that a tampered or expired presigned URL would be refused.
  it("makes a signed URL that a plain HTTP client can GET, with the download name as an attachment", async () => {
    const data = randomBytes(10_000);
    const key = variantKey(newMediaId(), "display", "webp");
    await storage.put(key, streamOf(data), "image/webp");

    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    const response = await fetch(new URL(url, harness.baseUrl));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/webp");
    expect(Buffer.from(await response.arrayBuffer())).toEqual(data);

    const download = await fetch(new URL(await storage.signedUrl(key, { expiresInSeconds: 300, downloadName: "holiday.webp" }), harness.baseUrl));
    expect(download.status).toBe(200);
    expect(download.headers.get("content-disposition")).toBe('attachment; filename="holiday.webp"');
    expect(Buffer.from(await download.arrayBuffer())).toEqual(data);

    await expect(storage.signedUrl(key, { expiresInSeconds: 8 * 24 * 3600 })).rejects.toThrow(RangeError);
  });
});

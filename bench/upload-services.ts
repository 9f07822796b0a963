/**
 * The private cluster services of bench/upload.ts (scripts/services: MariaDB primary + 1 replica, Redis,
 * NATS, S3), started in a process of their own. MariaDB, Redis and NATS are server binaries anyway, but the
 * S3 server (s3rver) is JavaScript that runs inside the process that starts it: here it gets its own event
 * loop instead of sharing the client's, which would slow the client down by exactly the uploads' S3 work.
 *
 * s3rver does not implement two calls that tus's S3 store (@tus/s3-store) makes on every upload:
 * ListParts (how far an upload has got, on creation and on every PATCH) and AbortMultipartUpload (when a
 * finished upload's data is removed). It answers them 405, so a tus upload in cluster mode fails with 500
 * at creation. This process answers those two from s3rver's own files (<dir>/<bucket>/._S3rver_uploads/
 * <uploadId>/: `key`, then one file per part with its MD5 beside it once the part is complete), in front
 * of s3rver's request handler; everything else goes to s3rver untouched. Real S3 implements both.
 *
 * Sends {type:"services", env, s3Dir} (bench/upload-protocol.ts) once everything runs; stops everything
 * and exits on SIGTERM, SIGINT or when the IPC channel closes. If this process is killed outright, the
 * watchdog of scripts/services/processes.ts stops the servers and deletes their directories.
 */
import fs from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import S3rver from "s3rver";
import { envFor, startServices } from "../scripts/services";
import type { ServicesReady } from "./upload-protocol";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const escapeXml = (value: string): string => value.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);

function sendXml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "Content-Type": "application/xml" });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
}

/** ListParts and AbortMultipartUpload for s3rver's multipart uploads, from the files it keeps for them. */
function withMultipartCalls(handler: Handler, rootDirectory: string): Handler {
  const uploadDir = (bucket: string, uploadId: string) => path.join(rootDirectory, bucket, "._S3rver_uploads", uploadId);

  async function uploadOf(bucket: string, key: string, uploadId: string): Promise<string | undefined> {
    if (!/^[0-9a-f]{1,64}$/i.test(uploadId)) return undefined;
    const dir = uploadDir(bucket, uploadId);
    const storedKey = await fs.promises.readFile(path.join(dir, "key"), "utf8").catch(() => undefined);
    return storedKey === key ? dir : undefined;
  }

  function noSuchUpload(res: ServerResponse, uploadId: string): void {
    sendXml(res, 404, `<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${escapeXml(uploadId)}</UploadId></Error>`);
  }

  async function listParts(res: ServerResponse, bucket: string, key: string, uploadId: string): Promise<void> {
    const dir = await uploadOf(bucket, key, uploadId);
    if (dir === undefined) return noSuchUpload(res, uploadId);
    const numbers = (await fs.promises.readdir(dir))
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((x, y) => x - y);
    const parts: string[] = [];
    for (const number of numbers) {
      // s3rver writes a part's MD5 once the part is complete: without it the part is still arriving.
      const md5 = await fs.promises.readFile(path.join(dir, `${number}.md5`), "utf8").catch(() => undefined);
      if (md5 === undefined) continue;
      const stat = await fs.promises.stat(path.join(dir, String(number)));
      parts.push(
        `<Part><PartNumber>${number}</PartNumber><LastModified>${stat.mtime.toISOString()}</LastModified>` +
          `<ETag>"${escapeXml(md5.trim())}"</ETag><Size>${stat.size}</Size></Part>`,
      );
    }
    sendXml(
      res,
      200,
      `<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${escapeXml(bucket)}</Bucket><Key>${escapeXml(key)}</Key>` +
        `<UploadId>${escapeXml(uploadId)}</UploadId><PartNumberMarker>0</PartNumberMarker><MaxParts>10000</MaxParts>` +
        `<IsTruncated>false</IsTruncated>${parts.join("")}</ListPartsResult>`,
    );
  }

  async function abort(res: ServerResponse, bucket: string, key: string, uploadId: string): Promise<void> {
    const dir = await uploadOf(bucket, key, uploadId);
    if (dir === undefined) return noSuchUpload(res, uploadId);
    await fs.promises.rm(dir, { recursive: true, force: true });
    res.writeHead(204).end();
  }

  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://s3");
    const uploadId = url.searchParams.get("uploadId");
    // Path style: /<bucket>/<key...>. ListParts is a GET and AbortMultipartUpload a DELETE with only ?uploadId=.
    const [bucket, ...keyParts] = url.pathname.slice(1).split("/").map(decodeURIComponent);
    const plain = uploadId !== null && [...url.searchParams.keys()].every((name) => name === "uploadId" || name === "x-id");
    if (plain && bucket !== undefined && keyParts.length > 0 && (req.method === "GET" || req.method === "DELETE")) {
      const key = keyParts.join("/");
      const answer = req.method === "GET" ? listParts(res, bucket, key, uploadId) : abort(res, bucket, key, uploadId);
      answer.catch((error: unknown) => {
        if (!res.headersSent) sendXml(res, 500, `<Error><Code>InternalError</Code><Message>${escapeXml(String(error))}</Message></Error>`);
        else res.destroy();
      });
      return;
    }
    handler(req, res);
  };
}

/** Wraps the request handler of every s3rver started in this process (scripts/services/s3.ts takes it from callback()). */
function addMultipartCallsToS3rver(): void {
  const prototype = S3rver.prototype;
  const original = prototype.callback;
  prototype.callback = function (this: S3rver): Handler {
    const handler = original.call(this);
    // FilesystemStore's directory (s3rver/lib/stores/filesystem.js), not in the package's public surface.
    const rootDirectory = (this as unknown as { store?: { rootDirectory?: string } }).store?.rootDirectory;
    if (rootDirectory === undefined) throw new Error("s3rver's file store is not where this benchmark expects it (store.rootDirectory)");
    return withMultipartCalls(handler, rootDirectory);
  };
}

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error("bench/upload-services.ts is started by bench/upload.ts with an IPC channel");
  addMultipartCallsToS3rver();
  const services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    services.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("stopping the services failed:", error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("disconnect", stop);
  if (services.s3 === undefined) throw new Error("no S3 server was started");
  const ready: ServicesReady = { type: "services", env: envFor(services), s3Dir: services.s3.dir };
  process.send(ready);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});

/**
 * An in-process fake S3 (the s3rver package) on a free 127.0.0.1 port, storing in a temporary directory,
 * with one bucket already created.
 *
 * API: startS3({ bucket?, baseDir? }) -> { endpoint, region, bucket, accessKeyId, secretAccessKey,
 *   forcePathStyle: true, dir, stop() }; stop() closes the server and deletes the directory.
 *
 * s3rver predates the AWS SDK's default request checksums: for a streamed body the SDK sends
 * `Content-Encoding: aws-chunked` framing with a checksum trailer, which s3rver would store verbatim.
 * The request handler here decodes that framing before s3rver reads the body and drops "aws-chunked"
 * from Content-Encoding in responses, as S3 does, so clients with default settings work unchanged.
 *
 * s3rver also lacks three multipart calls that tus's S3 store (@tus/s3-store) relies on: ListParts (how far
 * an upload has got, on creation, HEAD and every PATCH), AbortMultipartUpload (termination, and when a
 * finished upload's data is removed) and ListMultipartUploads (the expiry sweep). It answers them 405 or
 * 501, so a tus upload in cluster mode would fail with 500 at creation. The request handler here answers
 * those three from s3rver's own files (<dir>/<bucket>/._S3rver_uploads/<uploadId>/: `key`, then one file
 * per part with its MD5 beside it once the part is complete), in front of s3rver; everything else goes to
 * s3rver untouched. Real S3 implements all three. These answers do not check the request's signature.
 */
import fs from "node:fs";
import http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import os from "node:os";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import type { TransformCallback } from "node:stream";
import S3rver from "s3rver";
import { deleteDirectoryWhenProcessEnds, removeDirectory } from "./processes";

/** The credentials s3rver accepts. */
const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const;

export interface S3Server {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly forcePathStyle: true;
  readonly dir: string;
  /** The process serving it when that is not this one (s3-process.ts). */
  readonly pid?: number;
  /** Closes the server and deletes its directory. */
  stop(): Promise<void>;
}

export interface S3Options {
  /** Created before the server starts; default "shoal-test". */
  readonly bucket?: string;
  /** Parent of the server's own temporary directory (default os.tmpdir()). */
  readonly baseDir?: string;
}

const MAX_CHUNK_HEADER = 4096;

/**
 * Decodes an aws-chunked body: `<hex size>[;chunk-signature=...]\r\n<data>\r\n` repeated, then a
 * zero-size chunk followed by trailer lines, which are dropped.
 */
class AwsChunkedDecoder extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  private state: "size" | "data" | "after-data" | "trailer" = "size";
  private remaining = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    try {
      this.consume();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    callback(this.state === "trailer" ? null : new Error("aws-chunked body ended before its last chunk"));
  }

  private consume(): void {
    for (;;) {
      if (this.state === "trailer") {
        this.pending = Buffer.alloc(0);
        return;
      }
      if (this.state === "data") {
        if (this.pending.length === 0) return;
        const size = Math.min(this.remaining, this.pending.length);
        this.push(this.pending.subarray(0, size));
        this.pending = this.pending.subarray(size);
        this.remaining -= size;
        if (this.remaining === 0) this.state = "after-data";
        continue;
      }
      const lineEnd = this.pending.indexOf("\r\n");
      if (lineEnd < 0) {
        if (this.pending.length > MAX_CHUNK_HEADER) throw new Error("malformed aws-chunked body");
        return;
      }
      const line = this.pending.subarray(0, lineEnd).toString("latin1");
      this.pending = this.pending.subarray(lineEnd + 2);
      if (this.state === "after-data") {
        if (line !== "") throw new Error("malformed aws-chunked body: chunk longer than announced");
        this.state = "size";
        continue;
      }
      const sizeField = line.split(";")[0] ?? "";
      if (!/^[0-9a-f]+$/i.test(sizeField)) throw new Error(`malformed aws-chunked size line "${line}"`);
      this.remaining = Number.parseInt(sizeField, 16);
      this.state = this.remaining === 0 ? "trailer" : "data";
    }
  }
}

function withoutAwsChunked(value: string): string {
  return value
    .split(",")
    .map((encoding) => encoding.trim())
    .filter((encoding) => encoding !== "" && encoding.toLowerCase() !== "aws-chunked")
    .join(",");
}

/**
 * s3rver and the multipart parser it uses read bodies with request.pipe(); for aws-chunked requests that
 * pipe now delivers the decoded bytes. The headers stay as sent because they are covered by the signature.
 */
function decodeAwsChunkedBody(request: IncomingMessage): void {
  const encodings = (request.headers["content-encoding"] ?? "").split(",").map((part) => part.trim().toLowerCase());
  if (!encodings.includes("aws-chunked")) return;
  const decoder = new AwsChunkedDecoder();
  request.once("error", (error) => decoder.destroy(error));
  Readable.prototype.pipe.call(request, decoder);
  request.pipe = <T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T =>
    decoder.pipe(destination, options);
}

const escapeXml = (value: string): string => value.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);

function sendXml(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { "Content-Type": "application/xml" });
  response.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
}

const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";

/**
 * ListParts, AbortMultipartUpload and ListMultipartUploads for s3rver's multipart uploads, from the files it
 * keeps for them under rootDirectory (its `directory` option). Returns false for every other request, and
 * for a bucket that does not exist, so that s3rver answers those itself.
 */
function multipartCalls(rootDirectory: string): (request: IncomingMessage, response: ServerResponse) => boolean {
  const uploadsDir = (bucket: string) => path.join(rootDirectory, bucket, "._S3rver_uploads");

  const bucketExists = (bucket: string): Promise<boolean> =>
    fs.promises.stat(path.join(rootDirectory, bucket)).then(
      (stat) => stat.isDirectory(),
      () => false,
    );

  /** The upload's key as s3rver recorded it at CreateMultipartUpload, or undefined if there is no such upload. */
  async function uploadKey(bucket: string, uploadId: string): Promise<string | undefined> {
    if (!/^[0-9a-f]{1,64}$/i.test(uploadId)) return undefined;
    return fs.promises.readFile(path.join(uploadsDir(bucket), uploadId, "key"), "utf8").catch(() => undefined);
  }

  function noSuchUpload(response: ServerResponse, uploadId: string): void {
    sendXml(
      response,
      404,
      `<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${escapeXml(uploadId)}</UploadId></Error>`,
    );
  }

  async function listParts(response: ServerResponse, bucket: string, key: string, uploadId: string, marker: number): Promise<void> {
    if ((await uploadKey(bucket, uploadId)) !== key) return noSuchUpload(response, uploadId);
    const dir = path.join(uploadsDir(bucket), uploadId);
    const numbers = (await fs.promises.readdir(dir))
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .filter((number) => number > marker)
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
      response,
      200,
      `<ListPartsResult xmlns="${S3_XMLNS}"><Bucket>${escapeXml(bucket)}</Bucket><Key>${escapeXml(key)}</Key>` +
        `<UploadId>${escapeXml(uploadId)}</UploadId><PartNumberMarker>${marker}</PartNumberMarker><MaxParts>10000</MaxParts>` +
        `<IsTruncated>false</IsTruncated>${parts.join("")}</ListPartsResult>`,
    );
  }

  async function abort(response: ServerResponse, bucket: string, key: string, uploadId: string): Promise<void> {
    if ((await uploadKey(bucket, uploadId)) !== key) return noSuchUpload(response, uploadId);
    await fs.promises.rm(path.join(uploadsDir(bucket), uploadId), { recursive: true, force: true });
    response.writeHead(204).end();
  }

  /** Every upload in progress, in one page (no markers, prefix or delimiter). */
  async function listUploads(response: ServerResponse, bucket: string): Promise<void> {
    const ids = await fs.promises.readdir(uploadsDir(bucket)).catch(() => [] as string[]);
    const uploads: Array<{ key: string; uploadId: string; initiated: Date }> = [];
    for (const uploadId of ids) {
      const key = await uploadKey(bucket, uploadId);
      if (key === undefined) continue;
      const { mtime } = await fs.promises.stat(path.join(uploadsDir(bucket), uploadId, "key"));
      uploads.push({ key, uploadId, initiated: mtime });
    }
    uploads.sort((x, y) => (x.key === y.key ? x.uploadId.localeCompare(y.uploadId) : x.key < y.key ? -1 : 1));
    sendXml(
      response,
      200,
      `<ListMultipartUploadsResult xmlns="${S3_XMLNS}"><Bucket>${escapeXml(bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>` +
        `<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
        uploads
          .map(
            (upload) =>
              `<Upload><Key>${escapeXml(upload.key)}</Key><UploadId>${escapeXml(upload.uploadId)}</UploadId>` +
              `<Initiated>${upload.initiated.toISOString()}</Initiated></Upload>`,
          )
          .join("") +
        "</ListMultipartUploadsResult>",
    );
  }

  async function answer(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    // Path style: /<bucket>/<key...>.
    const [bucket = "", ...keyParts] = url.pathname.slice(1).split("/");
    const key = decodeURIComponent(keyParts.join("/"));
    const uploadId = url.searchParams.get("uploadId");
    if (!(await bucketExists(bucket))) {
      sendXml(response, 404, `<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>${escapeXml(bucket)}</BucketName></Error>`);
      return;
    }
    if (uploadId === null) return listUploads(response, bucket);
    if (request.method === "DELETE") return abort(response, bucket, key, uploadId);
    return listParts(response, bucket, key, uploadId, Number(url.searchParams.get("part-number-marker") ?? "0") || 0);
  }

  return (request, response) => {
    const url = new URL(request.url ?? "/", "http://s3");
    const [bucket = "", ...keyParts] = url.pathname.slice(1).split("/");
    const hasKey = keyParts.join("/") !== "";
    const uploadId = url.searchParams.get("uploadId");
    const ours =
      bucket !== "" &&
      ((hasKey && uploadId !== null && (request.method === "GET" || request.method === "DELETE")) ||
        (!hasKey && url.searchParams.has("uploads") && request.method === "GET"));
    if (!ours) return false;
    answer(request, response, url).catch((error: unknown) => {
      if (!response.headersSent) sendXml(response, 500, `<Error><Code>InternalError</Code><Message>${escapeXml(String(error))}</Message></Error>`);
      else response.destroy();
    });
    return true;
  };
}

function dropAwsChunkedFromResponse(response: ServerResponse): void {
  const setHeader = response.setHeader.bind(response);
  response.setHeader = (name: string, value: number | string | readonly string[]) => {
    if (name.toLowerCase() !== "content-encoding") return setHeader(name, value);
    const kept = withoutAwsChunked(Array.isArray(value) ? value.join(",") : String(value));
    if (kept === "") {
      response.removeHeader(name);
      return response;
    }
    return setHeader(name, kept);
  };
}

export async function startS3(options: S3Options = {}): Promise<S3Server> {
  const bucket = options.bucket ?? "shoal-test";
  const dir = await fs.promises.mkdtemp(path.join(options.baseDir ?? os.tmpdir(), "shoal-s3-"));
  deleteDirectoryWhenProcessEnds(dir);
  const fakeS3 = new S3rver({ silent: true, directory: dir, configureBuckets: [{ name: bucket, configs: [] }] });
  const server = http.createServer();
  try {
    await fakeS3.configureBuckets();
    const handle = fakeS3.callback();
    const answerMultipartCall = multipartCalls(dir);
    server.on("request", (request: IncomingMessage, response: ServerResponse) => {
      if (answerMultipartCall(request, response)) return;
      decodeAwsChunkedBody(request);
      dropAwsChunkedFromResponse(response);
      handle(request, response);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port: 0 }, resolve);
    });
  } catch (error) {
    server.close();
    await removeDirectory(dir).catch(() => undefined);
    throw error;
  }
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error(`unexpected S3 listen address ${String(address)}`);
  // A forgotten stop() must not keep the process alive.
  server.unref();
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    region: "us-east-1",
    bucket,
    ...S3RVER_CREDENTIALS,
    forcePathStyle: true,
    dir,
    stop: () => {
      stopped ??= (async () => {
        // Clients keep idle keep-alive sockets open, which would hold close() back.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        await removeDirectory(dir);
      })();
      return stopped;
    },
  };
}

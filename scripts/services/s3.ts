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
    server.on("request", (request: IncomingMessage, response: ServerResponse) => {
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

/**
 * The client side of bench/upload.ts: the ways a big file is uploaded, by hand on node:http so
 * that the bytes stream from a generator with backpressure (never the whole file in memory) and the
 * timing of each request is known: when its last byte was handed to the kernel, and when the answer
 * arrived. The gap between the two is what the server does after the last byte (storing, hashing,
 * fsync, catalogue).
 */
import http from "node:http";
import { performance } from "node:perf_hooks";
import type { ContentStream } from "./upload-content";
import { multipartFraming } from "./upload-content";

/** A request that makes no progress for this long (no byte read or written) fails. */
const IDLE_TIMEOUT_MS = 300_000;
const FILE_NAME = "upload-benchmark.mp4";
const FILE_TYPE = "video/mp4";

export interface Exchange {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** From the start of the request until its last body byte was handed to the socket (or the answer came, if earlier). */
  readonly sentSeconds: number;
  /** From the start of the request until the answer was complete. */
  readonly totalSeconds: number;
}

/** One request, as timed by the client. */
export interface RequestTiming {
  readonly what: string;
  readonly bodyBytes: number;
  readonly seconds: number;
  /** Last byte sent -> answer complete. */
  readonly tailSeconds: number;
}

/** What one upload became, and how long it took. */
export interface UploadOutcome {
  readonly seconds: number;
  readonly requests: readonly RequestTiming[];
  /** As the server reports them. */
  readonly storedBytes: number;
  readonly sha256?: string;
  readonly mime?: string;
  readonly mediaId?: string;
  /** Raw server: the file it wrote. */
  readonly file?: string;
  /** Straight to S3: the object's URL, and its ETag (for a single PUT, the content's MD5). */
  readonly s3Object?: string;
  readonly etag?: string;
}

interface MediaAnswer {
  readonly media: { readonly id: string; readonly bytes: number; readonly sha256: string; readonly mime: string; readonly kind: string };
  readonly duplicate?: boolean;
}

const inFlight = new Set<http.ClientRequest>();

/** Ctrl-C: fails every request in flight. */
export function abortAllRequests(): void {
  for (const request of inFlight) request.destroy(new Error("interrupted"));
}

/**
 * Sends one request with `body` streamed chunk by chunk, waiting for 'drain' whenever the socket's buffer
 * is full. If the server answers before the body is complete (a refusal), sending stops.
 */
export function exchange(
  url: URL,
  options: { method: string; headers: http.OutgoingHttpHeaders; agent: http.Agent },
  body?: Iterable<Buffer>,
): Promise<Exchange> {
  return new Promise<Exchange>((resolve, reject) => {
    const started = performance.now();
    let sentAt: number | undefined;
    let answered = false;
    const request = http.request(url, { method: options.method, headers: options.headers, agent: options.agent });
    inFlight.add(request);
    request.setTimeout(IDLE_TIMEOUT_MS, () => request.destroy(new Error(`${options.method} ${url.pathname}: no progress for ${IDLE_TIMEOUT_MS / 1000} s`)));
    request.on("error", (error) => {
      inFlight.delete(request);
      reject(error);
    });
    request.on("finish", () => {
      sentAt ??= performance.now();
    });
    request.on("response", (response) => {
      answered = true;
      sentAt ??= performance.now();
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", reject);
      response.on("end", () => {
        inFlight.delete(request);
        const ended = performance.now();
        // An early answer (refusal) leaves the body unfinished: this connection cannot be reused.
        if (!request.writableFinished) request.destroy();
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          sentSeconds: ((sentAt ?? ended) - started) / 1000,
          totalSeconds: (ended - started) / 1000,
        });
      });
    });

    const canContinue = () => !answered && !request.destroyed;
    const drained = () =>
      new Promise<void>((resume) => {
        const done = () => {
          request.off("drain", done);
          request.off("close", done);
          request.off("response", done);
          resume();
        };
        request.on("drain", done);
        request.on("close", done);
        request.on("response", done);
      });
    void (async () => {
      if (body !== undefined) {
        for (const chunk of body) {
          if (!canContinue()) return;
          if (!request.write(chunk)) await drained();
        }
      }
      if (canContinue()) request.end();
    })().catch((error: unknown) => request.destroy(error instanceof Error ? error : new Error(String(error))));
  });
}

function fail(what: string, answer: Exchange): Error {
  return new Error(`${what}: ${answer.status} ${answer.body.slice(0, 500)}`);
}

function timing(what: string, bodyBytes: number, answer: Exchange): RequestTiming {
  return { what, bodyBytes, seconds: answer.totalSeconds, tailSeconds: answer.totalSeconds - answer.sentSeconds };
}

function header(answer: Exchange, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Signs up through POST /api/auth/register; resolves with the session token (for `Authorization: Bearer`). */
/** DELETE /api/media/<id> (the stored object goes with it, and the quota comes back). */
export async function deleteMedia(baseUrl: string, token: string, mediaId: string): Promise<void> {
  const response = await fetch(`${baseUrl}/api/media/${mediaId}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(60_000),
  });
  if (response.status !== 204 && response.status !== 200) throw new Error(`deleting media ${mediaId}: ${response.status} ${await response.text()}`);
}

function tusMetadata(): string {
  const encode = (value: string) => Buffer.from(value).toString("base64");
  return `filename ${encode(FILE_NAME)},filetype ${encode(FILE_TYPE)},title ${encode("upload benchmark")}`;
}

/**
 * (a) tus 1.0: POST /api/uploads to create, then PATCHes of `chunkBytes` each; with chunkBytes 0, one POST
 * that carries the whole content (creation-with-upload). The last request answers once Shoal has turned
 * the upload into a media item (Shoal-Media-Id); GET /api/uploads/<id>/media then says what it became.
 */
export async function uploadTus(baseUrl: string, token: string, content: ContentStream, chunkBytes: number, agent: http.Agent): Promise<UploadOutcome> {
  const started = performance.now();
  const requests: RequestTiming[] = [];
  const common = { authorization: `Bearer ${token}`, "tus-resumable": "1.0.0" };
  const creation = {
    ...common,
    "upload-length": String(content.size),
    "upload-metadata": tusMetadata(),
  };
  let location: string | undefined;
  let mediaId: string | undefined;
  if (chunkBytes === 0) {
    const answer = await exchange(
      new URL("/api/uploads", baseUrl),
      {
        method: "POST",
        headers: { ...creation, "content-type": "application/offset+octet-stream", "content-length": String(content.size) },
        agent,
      },
      content.range(),
    );
    if (answer.status !== 201) throw fail("tus creation-with-upload", answer);
    requests.push(timing("POST with the whole content", content.size, answer));
    location = header(answer, "location");
    mediaId = header(answer, "shoal-media-id");
  } else {
    const created = await exchange(new URL("/api/uploads", baseUrl), { method: "POST", headers: creation, agent });
    if (created.status !== 201) throw fail("tus creation", created);
    requests.push(timing("POST (create)", 0, created));
    location = header(created, "location");
    if (location === undefined) throw new Error("tus creation answered without Location");
    for (let offset = 0; offset < content.size; offset += chunkBytes) {
      const end = Math.min(content.size, offset + chunkBytes);
      const answer = await exchange(
        new URL(location, baseUrl),
        {
          method: "PATCH",
          headers: {
            ...common,
            "upload-offset": String(offset),
            "content-type": "application/offset+octet-stream",
            "content-length": String(end - offset),
          },
          agent,
        },
        content.range(offset, end),
      );
      if (answer.status !== 204) throw fail(`tus PATCH at ${offset}`, answer);
      if (Number(header(answer, "upload-offset")) !== end) throw new Error(`tus PATCH at ${offset}: Upload-Offset ${header(answer, "upload-offset")}, expected ${end}`);
      requests.push(timing(`PATCH ${offset}-${end}`, end - offset, answer));
      mediaId = header(answer, "shoal-media-id") ?? mediaId;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (location === undefined || mediaId === undefined) throw new Error("the finished tus upload did not name its media item (Shoal-Media-Id)");
  const uploadId = location.split("/").pop() ?? "";
  const result = await fetch(`${baseUrl}/api/uploads/${uploadId}/media`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(30_000),
  });
  const text = await result.text();
  if (result.status !== 200) throw new Error(`GET /api/uploads/${uploadId}/media: ${result.status} ${text}`);
  const { media } = JSON.parse(text) as MediaAnswer;
  if (media.id !== mediaId) throw new Error(`the upload became ${media.id}, the PATCH said ${mediaId}`);
  return { seconds, requests, storedBytes: media.bytes, sha256: media.sha256, mime: media.mime, mediaId: media.id };
}

/** (b) POST /api/media, multipart/form-data with a `title` field and the `file` field, streamed. */
export async function uploadMultipart(baseUrl: string, token: string, content: ContentStream, agent: http.Agent): Promise<UploadOutcome> {
  const { boundary, before, after } = multipartFraming(FILE_NAME, FILE_TYPE);
  function* body(): Generator<Buffer> {
    yield before;
    yield* content.range();
    yield after;
  }
  const length = before.length + content.size + after.length;
  const answer = await exchange(
    new URL("/api/media", baseUrl),
    {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": `multipart/form-data; boundary=${boundary}`,
        "content-length": String(length),
      },
      agent,
    },
    body(),
  );
  if (answer.status !== 201) throw fail("multipart POST /api/media", answer);
  const { media, duplicate } = JSON.parse(answer.body) as MediaAnswer;
  if (duplicate === true) throw new Error("multipart upload was taken as a duplicate: the contents of two uploads were the same");
  return {
    seconds: answer.totalSeconds,
    requests: [timing("POST multipart", length, answer)],
    storedBytes: media.bytes,
    sha256: media.sha256,
    mime: media.mime,
    mediaId: media.id,
  };
}

/** (c) The raw server: POST the bytes as they are; it pipes them to a file (and fsyncs it with `fsync`). */
export async function uploadRaw(baseUrl: string, content: ContentStream, fsync: boolean, agent: http.Agent): Promise<UploadOutcome> {
  const answer = await exchange(
    new URL(`/upload${fsync ? "?fsync=1" : ""}`, baseUrl),
    { method: "POST", headers: { "content-type": "application/octet-stream", "content-length": String(content.size) }, agent },
    content.range(),
  );
  if (answer.status !== 201) throw fail("raw POST", answer);
  const { bytes, file } = JSON.parse(answer.body) as { bytes: number; file: string };
  return { seconds: answer.totalSeconds, requests: [timing("POST raw", content.size, answer)], storedBytes: bytes, file };
}

/** The path of an object on an S3 server, path style: /<bucket>/<key>. */
function objectUrl(endpoint: string, bucket: string, key: string): URL {
  return new URL(`/${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`, endpoint);
}

/**
 * (d) The S3 server itself: one plain `PUT /<bucket>/<key>` with Content-Length, unsigned (s3rver checks a
 * signature only when a request carries one). Then a HEAD says what was stored: its size and ETag.
 */
export async function uploadS3Put(endpoint: string, bucket: string, key: string, content: ContentStream, agent: http.Agent): Promise<UploadOutcome> {
  const url = objectUrl(endpoint, bucket, key);
  const answer = await exchange(
    url,
    { method: "PUT", headers: { "content-type": "application/octet-stream", "content-length": String(content.size) }, agent },
    content.range(),
  );
  if (answer.status !== 200) throw fail(`S3 PUT ${url.pathname}`, answer);
  const stored = await exchange(url, { method: "HEAD", headers: {}, agent });
  if (stored.status !== 200) throw fail(`S3 HEAD ${url.pathname}`, stored);
  const etag = header(stored, "etag")?.replace(/"/g, "");
  return {
    seconds: answer.totalSeconds,
    requests: [timing("PUT to S3", content.size, answer)],
    storedBytes: Number(header(stored, "content-length")),
    s3Object: url.href,
    ...(etag === undefined ? {} : { etag }),
  };
}

/** DELETE of an object that uploadS3Put stored (also unsigned). */
export async function deleteS3Object(objectHref: string): Promise<void> {
  const response = await fetch(objectHref, { method: "DELETE", signal: AbortSignal.timeout(60_000) });
  if (response.status !== 204 && response.status !== 200) throw new Error(`deleting ${objectHref}: ${response.status} ${await response.text()}`);
}

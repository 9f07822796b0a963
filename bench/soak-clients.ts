/**
 * The soak's clients (bench/soak.ts): tus uploaders, readers of the feed, items and thumbnails, and open
 * sockets, each recording every request's route, time and outcome until told to stop.
 */
import fs from "node:fs";
import path from "node:path";
import type { Socket } from "socket.io-client";
import { io } from "socket.io-client";
import * as tus from "tus-js-client";
import { delay, PROJECT_ROOT, round } from "./harness/common";

/** Mixed media from the fixtures: photos, an animation, video and audio. */
export const SOAK_FIXTURES = [
  { file: "exif_jpeg/orientation_6.jpg", type: "image/jpeg" },
  { file: "image_formats/png_rgba_alpha.png", type: "image/png" },
  { file: "video/webm_vp9_bbb_10s.webm", type: "video/webm" },
  { file: "image_formats/webp_lossy_exif.webp", type: "image/webp" },
  { file: "audio/mp3_id3v24_cover.mp3", type: "audio/mpeg" },
  { file: "image_formats/gif_animated_30frames.gif", type: "image/gif" },
  { file: "video/mp4_h264_aac51_1080p60.mp4", type: "video/mp4" },
  { file: "audio/ogg_vorbis.ogg", type: "audio/ogg" },
] as const;

export interface Failure {
  readonly route: string;
  readonly detail: string;
  /** When it ended (ISO). */
  readonly at: string;
  /** How long the request had been under way, ms. */
  readonly afterMs?: number;
  /** fetch's underlying error (undici): its code and message, and the socket's ports and bytes when it had one. */
  readonly cause?: string;
}

/** What fetch's "fetch failed" hides: the cause's code and message, and which connection it was (to match HAProxy's log). */
export function describeCause(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  if (cause === undefined || cause === null) return undefined;
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as { code?: unknown }).code;
  const socket = (cause as { socket?: { localPort?: number; remotePort?: number; bytesWritten?: number; bytesRead?: number } }).socket;
  const connection = socket === undefined ? "" : ` (local port ${socket.localPort ?? "?"} → ${socket.remotePort ?? "?"}, ${socket.bytesWritten ?? "?"} bytes written, ${socket.bytesRead ?? "?"} read)`;
  const inner = describeCause(cause);
  return `${typeof code === "string" ? `${code}: ` : ""}${cause.message}${connection}${inner === undefined ? "" : `; ${inner}`}`;
}

/** Every request's time by route, and every failure. */
export class Recorder {
  readonly timings = new Map<string, number[]>();
  readonly failures: Failure[] = [];

  async time<T>(route: string, work: () => Promise<T>): Promise<T | undefined> {
    const started = performance.now();
    try {
      const result = await work();
      const list = this.timings.get(route) ?? [];
      list.push(performance.now() - started);
      this.timings.set(route, list);
      return result;
    } catch (error) {
      const cause = describeCause(error);
      this.failures.push({
        route,
        detail: error instanceof Error ? error.message : String(error),
        at: new Date().toISOString(),
        afterMs: round(performance.now() - started, 0),
        ...(cause === undefined ? {} : { cause }),
      });
      return undefined;
    }
  }

  /** p50 and p99 in ms with the count, per route. */
  summary(): Record<string, { count: number; p50Ms: number; p99Ms: number; maxMs: number }> {
    const percentile = (sorted: readonly number[], share: number): number => sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? 0;
    return Object.fromEntries(
      [...this.timings].map(([route, values]) => {
        const sorted = [...values].sort((a, b) => a - b);
        return [route, { count: sorted.length, p50Ms: round(percentile(sorted, 0.5), 1), p99Ms: round(percentile(sorted, 0.99), 1), maxMs: round(sorted.at(-1) ?? 0, 1) }];
      }),
    );
  }
}

async function expectOk(response: Response, what: string): Promise<Response> {
  if (!response.ok) throw new Error(`${what}: ${response.status} ${(await response.text()).slice(0, 200)}`);
  return response;
}

interface MediaView {
  readonly id: string;
  readonly status: string;
  readonly reason?: string | null;
  readonly variants?: ReadonlyArray<{ readonly name: string; readonly url: string }>;
}

/** As a browser's tus-js-client retries (its default, and one longer wait): a PATCH that broke or met a 5xx resumes from the server's offset. */
export const TUS_RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10_000];

/**
 * The fixture with a trailer naming the uploader and the round, so that every upload is new bytes (the same
 * bytes again from the same owner would give the existing item). The trailer is what each format skips:
 * bytes after the end of a JPEG, PNG, GIF, WebP, MP3 or Ogg stream, a `free` box in MP4, a Void element in WebM.
 */
export function uniqueUploadBytes(bytes: Buffer, type: string, tag: string): Buffer {
  const text = Buffer.from(`shoal-soak ${tag}`.padEnd(48).slice(0, 48), "latin1");
  if (type === "video/mp4") {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(8 + text.length, 0);
    header.write("free", 4, "latin1");
    return Buffer.concat([bytes, header, text]);
  }
  // EBML Void (0xEC) with a one-byte size: 0x80 | length.
  if (type === "video/webm") return Buffer.concat([bytes, Buffer.from([0xec, 0x80 | text.length]), text]);
  return Buffer.concat([bytes, text]);
}

/** Counts of what the uploaders' tus clients did besides succeeding at once. */
export interface UploadStats {
  /** A request retried by tus-js-client (after a broken connection or a 5xx), the upload then resumed. */
  retries: number;
  /** Uploads whose final answer named no media id (a resumed upload found complete): asked of GET /api/uploads/:id/media. */
  resultLookups: number;
}

/** Uploads with tus-js-client as the web page does, retrying as it does; resolves to the media id. */
function tusUploadWithRetries(bytes: Buffer, endpoint: string, token: string, metadata: Record<string, string>, stats: UploadStats): Promise<{ mediaId: string | null; url: string }> {
  return new Promise((resolve, reject) => {
    let mediaId: string | null = null;
    const upload = new tus.Upload(bytes, {
      endpoint,
      headers: { Authorization: `Bearer ${token}` },
      metadata,
      chunkSize: 512 * 1024,
      retryDelays: TUS_RETRY_DELAYS_MS,
      storeFingerprintForResuming: false,
      onShouldRetry(error) {
        // tus-js-client's own rule: retry without an answer, or on an answer other than a 4xx (409 and 423 excepted).
        const status = (error as tus.DetailedError).originalResponse?.getStatus() ?? 0;
        const retry = !(status >= 400 && status < 500) || status === 409 || status === 423;
        if (retry) stats.retries++;
        return retry;
      },
      onAfterResponse(_request, response) {
        mediaId = response.getHeader("Shoal-Media-Id") ?? mediaId;
      },
      onSuccess: () => resolve({ mediaId, url: upload.url ?? "" }),
      onError: reject,
    });
    upload.start();
  });
}

export interface SoakState {
  stopping: boolean;
  /** Once stopping, how long (Date.now()) uploaders still wait for the items in hand. */
  drainUntil: number;
  /** Every item an uploader made, by id. */
  readonly items: Map<string, { status: string; kind: string }>;
  /** Public items that are ready, for readers. */
  readonly readyIds: string[];
}

/** One uploader: uploads a fixture with tus, makes it public, waits until it is ready, and goes on with the next. */
export async function runUploader(baseUrl: string, token: string, index: number, state: SoakState, recorder: Recorder, stats: UploadStats): Promise<void> {
  const auth = { Authorization: `Bearer ${token}` };
  for (let round = 0; !state.stopping; round++) {
    const fixture = SOAK_FIXTURES[(index + round) % SOAK_FIXTURES.length] as (typeof SOAK_FIXTURES)[number];
    const bytes = uniqueUploadBytes(fs.readFileSync(path.join(PROJECT_ROOT, "test/fixtures", fixture.file)), fixture.type, `${index}.${round}.${Date.now()}`);
    const uploaded = await recorder.time("tus upload (create + PATCHes)", async () => {
      const metadata = { filename: path.basename(fixture.file), filetype: fixture.type, title: `soak ${index}.${round}` };
      const result = await tusUploadWithRetries(bytes, `${baseUrl}/api/uploads`, token, metadata, stats);
      if (result.mediaId !== null) return result.mediaId;
      // Resumed after its final PATCH was answered into a broken connection: ask what the upload became.
      stats.resultLookups++;
      const response = await expectOk(await fetch(new URL(`${new URL(result.url, baseUrl).pathname}/media`, baseUrl), { headers: auth }), "upload result");
      return ((await response.json()) as { media: MediaView }).media.id;
    });
    if (uploaded === undefined) {
      await delay(2000);
      continue;
    }
    state.items.set(uploaded, { status: "uploaded", kind: fixture.type.split("/")[0] ?? "?" });
    await recorder.time("PATCH /api/media/:id", async () =>
      expectOk(
        await fetch(`${baseUrl}/api/media/${uploaded}`, { method: "PATCH", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ visibility: "public" }) }),
        "make public",
      ),
    );
    await waitUntilSettled(baseUrl, auth, uploaded, state, recorder);
  }
}

/** Polls the item every second (as a page without a socket would) until it is ready or failed. */
export async function waitUntilSettled(baseUrl: string, auth: Record<string, string>, id: string, state: SoakState, recorder: Recorder): Promise<void> {
  while (!state.stopping || Date.now() < state.drainUntil) {
    const media = await recorder.time("GET /api/media/:id (owner)", async () => {
      const response = await expectOk(await fetch(`${baseUrl}/api/media/${id}`, { headers: auth }), `item ${id}`);
      return ((await response.json()) as { media: MediaView }).media;
    });
    if (media !== undefined) {
      state.items.set(id, { ...(state.items.get(id) ?? { kind: "?" }), status: media.status });
      if (media.status === "ready") {
        state.readyIds.push(id);
        return;
      }
      if (media.status === "failed") {
        recorder.failures.push({ route: "processing", detail: `${id} failed: ${media.reason ?? "?"}`, at: new Date().toISOString() });
        return;
      }
    }
    await delay(1000);
  }
}

/** One reader: the public feed, then an item from it and its thumbnail, with a pause between requests. */
export async function runReader(baseUrl: string, index: number, state: SoakState, recorder: Recorder, pauseMs: number): Promise<void> {
  await delay((index * 37) % pauseMs);
  for (let round = 0; !state.stopping; round++) {
    const feed = await recorder.time("GET /api/media?scope=public", async () => {
      const response = await expectOk(await fetch(`${baseUrl}/api/media?scope=public&limit=24`), "feed");
      return ((await response.json()) as { items: MediaView[] }).items;
    });
    await delay(pauseMs);
    const pick = feed?.[(index + round) % Math.max(1, feed.length)];
    if (pick === undefined || state.stopping) continue;
    const media = await recorder.time("GET /api/media/:id", async () => {
      const response = await expectOk(await fetch(`${baseUrl}/api/media/${pick.id}`), `item ${pick.id}`);
      return ((await response.json()) as { media: MediaView }).media;
    });
    await delay(pauseMs);
    const thumb = media?.variants?.find((variant) => variant.name === "thumb" || variant.name === "poster" || variant.name === "cover");
    if (thumb === undefined || state.stopping) continue;
    await recorder.time("GET thumbnail (signed S3 URL)", async () => {
      const response = await expectOk(await fetch(new URL(thumb.url, baseUrl)), "thumbnail");
      await response.arrayBuffer();
    });
    await delay(pauseMs);
  }
}

export interface SocketStats {
  connected: number;
  unexpectedDisconnects: number;
  connectErrors: number;
  events: number;
}

/** Opens a socket with the session behind `token` through the load balancer; counts what happens to it. */
export function openSoakSocket(baseUrl: string, token: string, stats: SocketStats, recorder: Recorder): Promise<Socket> {
  // WebSocket only: Node's client keeps no cookies, so long-polling would lose the load balancer's sticky cookie.
  const socket = io(baseUrl, { path: "/socket.io", auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
  for (const event of ["media:progress", "media:ready", "media:failed", "upload:progress"]) socket.on(event, () => stats.events++);
  return new Promise((resolve) => {
    socket.once("connect", () => {
      stats.connected++;
      socket.once("disconnect", (reason) => {
        if (reason !== "io client disconnect") {
          stats.unexpectedDisconnects++;
          recorder.failures.push({ route: "socket", detail: `disconnected: ${reason}`, at: new Date().toISOString() });
        }
      });
      resolve(socket);
    });
    socket.once("connect_error", (error) => {
      stats.connectErrors++;
      recorder.failures.push({ route: "socket", detail: `connect_error: ${error.message}`, at: new Date().toISOString() });
      resolve(socket);
    });
  });
}

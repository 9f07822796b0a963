import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as tus from "tus-js-client";
import type { MediaJson } from "../../lib/media/media-view";

export const FIXTURES = path.resolve(__dirname, "../fixtures");

export function fixture(relative: string): Buffer {
  return fs.readFileSync(path.join(FIXTURES, relative));
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export interface TusOptions {
  readonly endpoint: string;
  readonly token: string;
  readonly metadata?: Record<string, string>;
  readonly chunkSize?: number;
  /** Resume this upload instead of creating one. */
  readonly uploadUrl?: string;
  /** Abort once this many bytes have been sent (to simulate a dropped connection). */
  readonly abortAfterBytes?: number;
}

export interface TusResult {
  readonly uploadUrl: string;
  readonly mediaId: string | null;
  /** How far the upload had got when it stopped. */
  readonly bytesSent: number;
  readonly aborted: boolean;
}

/** Uploads with the real tus-js-client, as the web page does. Rejects with the server's status and body on refusal. */
export function tusUpload(bytes: Buffer, options: TusOptions): Promise<TusResult> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let mediaId: string | null = null;
    const upload = new tus.Upload(bytes, {
      endpoint: options.endpoint,
      uploadUrl: options.uploadUrl,
      headers: { Authorization: `Bearer ${options.token}` },
      metadata: options.metadata ?? {},
      chunkSize: options.chunkSize ?? 256 * 1024,
      retryDelays: [],
      removeFingerprintOnSuccess: true,
      storeFingerprintForResuming: false,
      onAfterResponse(_request, response) {
        mediaId = response.getHeader("Shoal-Media-Id") ?? mediaId;
      },
      onProgress(bytesSent) {
        sent = bytesSent;
        if (options.abortAfterBytes !== undefined && bytesSent >= options.abortAfterBytes) {
          void upload.abort().then(() => resolve({ uploadUrl: upload.url ?? "", mediaId, bytesSent: sent, aborted: true }));
        }
      },
      onSuccess() {
        resolve({ uploadUrl: upload.url ?? "", mediaId, bytesSent: sent, aborted: false });
      },
      onError(error) {
        const detail = error as tus.DetailedError;
        const response = detail.originalResponse;
        reject(
          Object.assign(new Error(error.message), {
            status: response?.getStatus(),
            body: response?.getBody(),
          }),
        );
      },
    });
    upload.start();
  });
}

/** A tus creation request by hand, to check what is refused before any byte is sent. */
export async function tusCreate(
  endpoint: string,
  token: string,
  length: number,
  metadata: Record<string, string> = {},
): Promise<{ status: number; body: string; location: string | null; retryAfter: string | null }> {
  const encoded = Object.entries(metadata)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString("base64")}`)
    .join(",");
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      "Tus-Resumable": "1.0.0",
      "Upload-Length": String(length),
      ...(encoded ? { "Upload-Metadata": encoded } : {}),
    },
  });
  return {
    status: response.status,
    body: await response.text(),
    location: response.headers.get("location"),
    retryAfter: response.headers.get("retry-after"),
  };
}

export interface MultipartAnswer {
  readonly status: number;
  readonly retryAfter: string | null;
  readonly body: { media?: MediaJson; duplicate?: boolean; error?: { code: string } };
}

/** A multipart upload (POST /api/media), as a script would send it. */
export async function multipartUpload(
  baseUrl: string,
  token: string,
  bytes: Buffer,
  filename: string,
  type = "application/octet-stream",
  title?: string,
): Promise<MultipartAnswer> {
  const form = new FormData();
  if (title !== undefined) form.append("title", title);
  form.append("file", new Blob([bytes], { type }), filename);
  const response = await fetch(`${baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as MultipartAnswer["body"] };
}

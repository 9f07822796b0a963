import fs from "node:fs";
import path from "node:path";
import { myMediaOf, signUpMember, usedBytesOf } from "../support/http-client";
import type { HttpClient } from "../support/http-client";
import { startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture, multipartUpload, sha256, tusCreate, tusUpload } from "../support/uploads";
import type { MediaJson } from "../../lib/media/media-view";

const KiB = 1024;
let node: RunningNode;
let strictNode: RunningNode;

function signUp(target: RunningNode): Promise<{ client: HttpClient; token: string }> {
  return signUpMember(target.baseUrl, target.publicUrl, { prefix: "uploader" });
}



/** Every file below the node's objects and uploads directories (what a refusal must not leave). */
function storedFiles(target: RunningNode): string[] {
  const roots = [path.join(target.settings.dataDir, "objects"), target.settings.uploads.dir];
  const found: string[] = [];
  const walk = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else found.push(path.relative(target.settings.dataDir, full));
    }
  };
  roots.forEach(walk);
  return found.sort();
}

beforeAll(async () => {
  // Every test signs up a fresh account from the same address; no processing worker runs, so items stay as uploaded.
  const registrations = { RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000", SERVICES: "api,users,media,site" };
  [node, strictNode] = await Promise.all([
    startNode(registrations),
    startNode({
      ...registrations,
      UPLOAD_MAX_IMAGE_BYTES: String(200 * KiB),
      USER_QUOTA_BYTES: String(600 * KiB),
      RATE_UPLOADS_PER_USER_PER_HOUR: "6",
    }),
  ]);
});

afterAll(async () => {
  await stopAllNodes();
});

describe("tus uploads", () => {
  test.each([
    ["an image", "exif_jpeg/orientation_6.jpg", "image", "image/jpeg"],
    ["a video", "video/mp4_h264_aac51_1080p60.mp4", "video", "video/mp4"],
    ["an audio file", "audio/mp3_id3v24_cover.mp3", "audio", "audio/mpeg"],
  ])("%s uploaded with tus-js-client becomes a media item whose stored bytes equal the file", async (_what, file, kind, mime) => {
    const { client, token } = await signUp(node);
    const bytes = fixture(file);
    const result = await tusUpload(bytes, {
      endpoint: `${node.baseUrl}/api/uploads`,
      token,
      chunkSize: 128 * KiB,
      metadata: { filename: path.basename(file), filetype: "application/octet-stream", title: "Holiday" },
    });
    expect(result.mediaId).toEqual(expect.any(String));

    const uploadId = result.uploadUrl.split("/").pop()!;
    const answer = await client.get<{ media: MediaJson }>(`/api/uploads/${uploadId}/media`, { bearer: token });
    expect(answer.status).toBe(200);
    expect(answer.body.media).toMatchObject({ id: result.mediaId, kind, mime, status: "uploaded", bytes: bytes.length, sha256: sha256(bytes), title: "Holiday" });

    const original = await fetch(new URL(answer.body.media.originalUrl!, node.baseUrl));
    expect(original.status).toBe(200);
    expect(sha256(new Uint8Array(await original.arrayBuffer()))).toBe(sha256(bytes));
    expect(await usedBytesOf(client, token)).toBe(bytes.length);
  });

  test("an upload interrupted about half-way resumes from where it stopped and completes", async () => {
    const { client, token } = await signUp(node);
    const bytes = fixture("video/mp4_h264_aac51_1080p60.mp4");
    const endpoint = `${node.baseUrl}/api/uploads`;
    const first = await tusUpload(bytes, { endpoint, token, chunkSize: 64 * KiB, abortAfterBytes: bytes.length / 2 });
    expect(first.aborted).toBe(true);

    const head = await fetch(new URL(first.uploadUrl, node.baseUrl), {
      method: "HEAD",
      headers: { Authorization: `Bearer ${token}`, "Tus-Resumable": "1.0.0" },
    });
    const offset = Number(head.headers.get("upload-offset"));
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThan(bytes.length);

    const resumed = await tusUpload(bytes, { endpoint, token, chunkSize: 64 * KiB, uploadUrl: new URL(first.uploadUrl, node.baseUrl).href });
    expect(resumed.mediaId).toEqual(expect.any(String));
    const [item] = await myMediaOf(client, token);
    expect(item).toMatchObject({ sha256: sha256(bytes), bytes: bytes.length });
  });

  test("someone else's upload answers 404 and cannot be written to", async () => {
    const owner = await signUp(node);
    const other = await signUp(node);
    const created = await tusCreate(`${node.baseUrl}/api/uploads`, owner.token, 1000, { filetype: "image/jpeg" });
    expect(created.status).toBe(201);
    const url = new URL(created.location!, node.baseUrl);
    const head = await fetch(url, { method: "HEAD", headers: { Authorization: `Bearer ${other.token}`, "Tus-Resumable": "1.0.0" } });
    expect(head.status).toBe(404);
    const patch = await fetch(url, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${other.token}`, "Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream" },
      body: new Uint8Array(10),
    });
    expect(patch.status).toBe(404);
  });

  test("anonymous uploads are refused with 401", async () => {
    const response = await fetch(`${node.baseUrl}/api/uploads`, { method: "POST", headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "10" } });
    expect(response.status).toBe(401);
  });

  test("terminating an upload gives its quota back and leaves nothing behind", async () => {
    const { client, token } = await signUp(node);
    const before = storedFiles(node);
    const created = await tusCreate(`${node.baseUrl}/api/uploads`, token, 5000, { filetype: "image/png" });
    expect(created.status).toBe(201);
    expect(await usedBytesOf(client, token)).toBe(5000);
    const terminated = await fetch(new URL(created.location!, node.baseUrl), {
      method: "DELETE",
      headers: { Authorization: `Bearer ${token}`, "Tus-Resumable": "1.0.0" },
    });
    expect(terminated.status).toBe(204);
    expect(await usedBytesOf(client, token)).toBe(0);
    expect(storedFiles(node)).toEqual(before);
  });
});

describe("multipart uploads", () => {
  test("POST /api/media with form data stores the file; the same bytes again give the existing item with duplicate: true", async () => {
    const { client, token } = await signUp(node);
    const bytes = fixture("image_formats/png_rgba_alpha.png");
    const first = await multipartUpload(node.baseUrl, token, bytes, "alpha.png", "image/png", "Bug");
    expect(first.status).toBe(201);
    expect(first.body.media).toMatchObject({ kind: "image", mime: "image/png", sha256: sha256(bytes), title: "Bug", status: "uploaded" });

    const objectsBefore = storedFiles(node);
    const again = await multipartUpload(node.baseUrl, token, bytes, "same-again.png");
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ duplicate: true, media: { id: first.body.media!.id } });
    expect(storedFiles(node)).toEqual(objectsBefore);
    expect(await myMediaOf(client, token)).toHaveLength(1);
    expect(await usedBytesOf(client, token)).toBe(bytes.length);
  });

  test("the declared type and name are not trusted: a PNG sent as photo.mp3 with audio/mpeg is stored as an image", async () => {
    const { token } = await signUp(node);
    const answer = await multipartUpload(node.baseUrl, token, fixture("image_formats/png_rgba_alpha.png"), "photo.mp3", "audio/mpeg");
    expect(answer.status).toBe(201);
    expect(answer.body.media).toMatchObject({ kind: "image", mime: "image/png" });
  });
});

describe("refusals leave nothing behind: no object, no row, no quota", () => {
  const refusals: [string, () => Buffer, string, number, string][] = [
    ["a zero-byte file", () => fixture("hostile_images/empty_zero_bytes.jpg"), "empty.jpg", 400, "empty_upload"],
    ["a Matroska file with a corrupt header", () => fixture("video/broken_corrupt_header.mkv"), "broken.mkv", 415, "unsupported_type"],
    ["a WAV file with a broken header", () => fixture("audio/broken_header.wav"), "broken.wav", 415, "unsupported_type"],
    ["an SVG image (a script carrier)", () => Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), "logo.svg", 415, "unsupported_type"],
    ["an HTML page named .jpg", () => Buffer.from("<!doctype html><html><body><script>alert(1)</script></body></html>"), "photo.jpg", 415, "unsupported_type"],
    ["a PHP script named .png", () => Buffer.from("<?php system($_GET['c']); ?>"), "photo.png", 415, "unsupported_type"],
    ["a ZIP archive named .mp4", () => Buffer.from("504b0304140000000800", "hex"), "movie.mp4", 415, "unsupported_type"],
  ];

  test.each(refusals)("multipart: %s is refused", async (_what, bytes, name, status, code) => {
    const { client, token } = await signUp(node);
    const before = storedFiles(node);
    const answer = await multipartUpload(node.baseUrl, token, bytes(), name, "image/jpeg");
    expect(answer.status).toBe(status);
    expect(answer.body.error?.code).toBe(code);
    expect(storedFiles(node)).toEqual(before);
    expect(await myMediaOf(client, token)).toEqual([]);
    expect(await usedBytesOf(client, token)).toBe(0);
  });

  test.each(refusals.filter(([, bytes]) => bytes().length > 0))("tus: %s is refused when it completes", async (_what, bytes, name, status, code) => {
    const { client, token } = await signUp(node);
    const before = storedFiles(node);
    const failure = await tusUpload(bytes(), { endpoint: `${node.baseUrl}/api/uploads`, token, metadata: { filename: name, filetype: "image/jpeg" } }).catch(
      (error: { status: number; body: string }) => error,
    );
    expect(failure).toMatchObject({ status });
    expect(JSON.parse((failure as { body: string }).body)).toMatchObject({ error: { code } });
    expect(storedFiles(node)).toEqual(before);
    expect(await myMediaOf(client, token)).toEqual([]);
    expect(await usedBytesOf(client, token)).toBe(0);
  });

  test.each([
    ["multipart", "multipart"],
    ["tus", "tus"],
  ])("%s: a pixel bomb (a PNG declaring 65536x65536) is refused with 422 from its header, leaving nothing", async (_what, via) => {
    const { client, token } = await signUp(node);
    const before = storedFiles(node);
    const bytes = fixture("hostile_images/pixel_bomb_65536x65536.png");
    const answer =
      via === "multipart"
        ? await multipartUpload(node.baseUrl, token, bytes, "bomb.png", "image/png")
        : await tusUpload(bytes, { endpoint: `${node.baseUrl}/api/uploads`, token, metadata: { filetype: "image/png" } }).then(
            () => ({ status: 201, body: {} }),
            (error: { status: number; body: string }) => ({ status: error.status, body: JSON.parse(error.body) as { error?: { code: string } } }),
          );
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ error: { code: "image_too_large" } });
    expect(storedFiles(node)).toEqual(before);
    expect(await myMediaOf(client, token)).toEqual([]);
    expect(await usedBytesOf(client, token)).toBe(0);
  });

  test("tus: a zero-length upload is refused at creation with 400", async () => {
    const { token } = await signUp(node);
    const created = await tusCreate(`${node.baseUrl}/api/uploads`, token, 0, { filetype: "image/jpeg" });
    expect(created.status).toBe(400);
    expect(JSON.parse(created.body)).toMatchObject({ error: { code: "empty_upload" } });
  });

  test("tus: a declared size over the kind's limit is refused with 413 before any byte is stored", async () => {
    const { client, token } = await signUp(strictNode);
    const before = storedFiles(strictNode);
    const created = await tusCreate(`${strictNode.baseUrl}/api/uploads`, token, 300 * KiB, { filetype: "image/jpeg" });
    expect(created.status).toBe(413);
    expect(JSON.parse(created.body)).toMatchObject({ error: { code: "too_large" } });
    expect(storedFiles(strictNode)).toEqual(before);
    expect(await usedBytesOf(client, token)).toBe(0);
  });

  test("the bytes actually received are checked too: an image over the image limit declared as audio is refused with 413", async () => {
    const { client, token } = await signUp(strictNode);
    const before = storedFiles(strictNode);
    const bytes = fixture("exif_jpeg/orientation_6.jpg");
    const failure = await tusUpload(bytes, { endpoint: `${strictNode.baseUrl}/api/uploads`, token, metadata: { filetype: "audio/mpeg" } }).catch(
      (error: { status: number; body: string }) => error,
    );
    expect(failure).toMatchObject({ status: 413 });
    expect(storedFiles(strictNode)).toEqual(before);
    expect(await usedBytesOf(client, token)).toBe(0);
    const form = await multipartUpload(strictNode.baseUrl, token, bytes, "big.jpg");
    expect(form.status).toBe(413);
    expect(storedFiles(strictNode)).toEqual(before);
  });

  test("over the storage quota: 413 quota_exceeded at creation, and the quota is unchanged", async () => {
    const { client, token } = await signUp(strictNode);
    const first = await tusCreate(`${strictNode.baseUrl}/api/uploads`, token, 150 * KiB, { filetype: "image/png" });
    expect(first.status).toBe(201);
    const held = await usedBytesOf(client, token);
    const refused = await tusCreate(`${strictNode.baseUrl}/api/uploads`, token, 500 * KiB, { filetype: "video/mp4" });
    expect(refused.status).toBe(413);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: "quota_exceeded" } });
    expect(await usedBytesOf(client, token)).toBe(held);
  });

  test("the per-user upload rate limit answers 429 with Retry-After", async () => {
    const { token } = await signUp(strictNode);
    const answers = [];
    for (let attempt = 0; attempt < 7; attempt++) answers.push(await tusCreate(`${strictNode.baseUrl}/api/uploads`, token, 10, { filetype: "image/png" }));
    expect(answers.slice(0, 6).map((answer) => answer.status)).toEqual([201, 201, 201, 201, 201, 201]);
    expect(answers[6]).toMatchObject({ status: 429, retryAfter: expect.stringMatching(/^\d+$/) });
  });
});

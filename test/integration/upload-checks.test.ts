/**
 * What the upload path checks before anything is stored, through HTTP: a malformed multipart body,
 * file names in UTF-8, and image headers that lie far into the file (a pixel bomb behind 300 kB of
 * JPEG comments, a huge tiled TIFF whose directory comes after its data).
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { myMediaOf, signUpMember, usedBytesOf } from "../support/http-client";
import type { HttpClient } from "../support/http-client";
import { jpegWithCommentsBeforeFrame, tiledDeflatePageHeader, writeTiff } from "../support/crafted-images";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture, sha256, tusUpload } from "../support/uploads";
import type { MediaJson } from "../../lib/media/media-view";

interface Answer {
  readonly status: number;
  readonly body: { media?: MediaJson; error?: { code: string; message: string } };
}

let node: RunningNode;

beforeAll(async () => {
  // No processing worker: what is accepted stays as uploaded.
  node = await startNode({ RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000", SERVICES: "api,users,media,site" });
});

afterAll(() => stopAllNodes());

function signUp(): Promise<{ client: HttpClient; token: string }> {
  return signUpMember(node.baseUrl, node.publicUrl, { prefix: "checked" });
}



/** Every file below the node's objects and uploads directories. */
function storedFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else found.push(path.relative(node.settings.dataDir, full));
    }
  };
  [path.join(node.settings.dataDir, "objects"), node.settings.uploads.dir].forEach(walk);
  return found.sort();
}

async function answerOf(response: Response): Promise<Answer> {
  return { status: response.status, body: (await response.json()) as Answer["body"] };
}

function postForm(token: string, body: Buffer, contentType: string): Promise<Answer> {
  return fetch(`${node.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": contentType }, body }).then(answerOf);
}

function multipart(token: string, bytes: Buffer, filename: string): Promise<Answer> {
  const form = new FormData();
  form.append("file", new Blob([bytes], { type: "application/octet-stream" }), filename);
  return fetch(`${node.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form }).then(answerOf);
}

function viaTus(token: string, bytes: Buffer, filename: string): Promise<Answer> {
  return tusUpload(bytes, { endpoint: `${node.baseUrl}/api/uploads`, token, metadata: { filename, filetype: "application/octet-stream" } }).then(
    () => ({ status: 201, body: {} }),
    (error: { status: number; body: string }) => ({ status: error.status, body: JSON.parse(error.body) as Answer["body"] }),
  );
}

/** Sends `bytes` one way or the other and expects a refusal that leaves no object, no item and no quota held. */
async function expectRefusedLeavingNothing(via: "multipart" | "tus", bytes: Buffer, filename: string, status: number, code: string): Promise<Answer> {
  const { client, token } = await signUp();
  const before = storedFiles();
  const answer = via === "multipart" ? await multipart(token, bytes, filename) : await viaTus(token, bytes, filename);
  expect(answer).toMatchObject({ status, body: { error: { code } } });
  expect(storedFiles()).toEqual(before);
  expect(await myMediaOf(client, token)).toEqual([]);
  expect(await usedBytesOf(client, token)).toBe(0);
  return answer;
}

describe("a malformed multipart body answers 400 invalid_multipart and leaves nothing", () => {
  const BOUNDARY = "----shoal-form-boundary";
  const png = fixture("image_formats/png_rgba_alpha.png");
  const partHead = (filename: string) =>
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: image/png\r\n\r\n`, "latin1");
  const whole = Buffer.concat([partHead("alpha.png"), png, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]);
  const cases: [string, () => { body: Buffer; boundary: string }][] = [
    ["a body written with another boundary than the header's", () => ({ body: whole, boundary: "some-other-boundary" })],
    ["a body cut off in the middle of the file", () => ({ body: whole.subarray(0, partHead("alpha.png").length + png.length / 2), boundary: BOUNDARY })],
    [
      "a body cut off after the file, before the form's closing delimiter",
      () => ({ body: Buffer.concat([partHead("alpha.png"), png, Buffer.from(`\r\n--${BOUNDARY}`)]), boundary: BOUNDARY }),
    ],
    ["a NUL byte in a part header", () => ({ body: Buffer.concat([partHead("al\0pha.png"), png, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]), boundary: BOUNDARY })],
  ];

  test("the well-formed body these cases are made from is accepted", async () => {
    const { token } = await signUp();
    const answer = await postForm(token, whole, `multipart/form-data; boundary=${BOUNDARY}`);
    expect(answer.status).toBe(201);
    expect(answer.body.media).toMatchObject({ sha256: sha256(png), bytes: png.length });
  });

  test.each(cases)("%s", async (_what, make) => {
    const { client, token } = await signUp();
    const before = storedFiles();
    const { body, boundary } = make();
    const answer = await postForm(token, body, `multipart/form-data; boundary=${boundary}`);
    expect(answer).toMatchObject({ status: 400, body: { error: { code: "invalid_multipart", message: expect.any(String) } } });
    expect(storedFiles()).toEqual(before);
    expect(await myMediaOf(client, token)).toEqual([]);
    expect(await usedBytesOf(client, token)).toBe(0);
  });
});

test("a client that goes away half-way through a multipart body leaves nothing behind and its quota is given back", async () => {
  const { client, token } = await signUp();
  const before = storedFiles();
  const boundary = "----shoal-dropped";
  const png = fixture("image_formats/png_rgba_alpha.png");
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="alpha.png"\r\nContent-Type: image/png\r\n\r\n`);
  const declaredLength = head.length + png.length + 64;
  const request = http.request(`${node.baseUrl}/api/media`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": `multipart/form-data; boundary=${boundary}`, "Content-Length": declaredLength },
  });
  request.on("error", () => undefined);
  request.write(Buffer.concat([head, png.subarray(0, png.length / 2)]));
  // The reservation for the declared length shows that the node is reading the body.
  await eventually(() => usedBytesOf(client, token), (used) => used === declaredLength);
  request.destroy();
  await eventually(() => usedBytesOf(client, token), (used) => used === 0);
  await eventually(async () => storedFiles(), (files) => JSON.stringify(files) === JSON.stringify(before));
  expect(await myMediaOf(client, token)).toEqual([]);
});

describe("file names sent in UTF-8 are kept", () => {
  test.each([
    ["café.jpg", "exif_jpeg/orientation_1.jpg"],
    ["日本語.jpg", "exif_jpeg/orientation_2.jpg"],
  ])("%s is the name the original downloads under", async (name, file) => {
    const { token } = await signUp();
    const answer = await multipart(token, fixture(file), name);
    expect(answer.status).toBe(201);
    const original = await fetch(new URL(answer.body.media!.originalUrl!, node.baseUrl));
    expect(original.status).toBe(200);
    const encoded = /filename\*=UTF-8''([^;]+)/.exec(original.headers.get("content-disposition") ?? "")?.[1];
    expect(encoded && decodeURIComponent(encoded)).toBe(name);
  });
});

describe("an image's header is read however far into the file it lies", () => {
  const deepJpegBomb = jpegWithCommentsBeforeFrame(50_000, 50_000, 300 * 1024);

  test.each(["multipart", "tus"] as const)("%s: a 50000×50000 JPEG whose frame header follows 300 kB of comments is refused with 422 image_too_large", async (via) => {
    await expectRefusedLeavingNothing(via, deepJpegBomb, "bomb.jpg", 422, "image_too_large");
  });

  test.each(["multipart", "tus"] as const)("%s: a tiled, compressed 60000×60000 TIFF whose directory follows 300 kB of data is refused with 422 image_too_large", async (via) => {
    const answer = await expectRefusedLeavingNothing(via, writeTiff("MM", [tiledDeflatePageHeader(60_000, 60_000)], 300 * 1024), "scan.tif", 422, "image_too_large");
    expect(answer.body.error?.message).toContain("60000×60000");
  });

  test("multipart: a JPEG whose frame header comes after 1.2 MB of comments (past the 1 MiB read) is refused with 422 rather than stored unchecked", async () => {
    await expectRefusedLeavingNothing("multipart", jpegWithCommentsBeforeFrame(400, 300, 1_200_000), "far.jpg", 422, "image_header_too_far");
  });

  // libtiff writes a TIFF's directory after its image data: past the read-ahead, it is checked as the bytes pass.
  test.each(["multipart", "tus"] as const)("%s: a 60000×60000 TIFF whose directory follows 2 MB of data is refused with 422 image_too_large", async (via) => {
    await expectRefusedLeavingNothing(via, writeTiff("II", [tiledDeflatePageHeader(60_000, 60_000)], 2 * 1024 * 1024), "scan.tif", 422, "image_too_large");
  });

  test.each(["multipart", "tus"] as const)("%s: a 400×300 TIFF whose directory follows 2 MB of data is accepted", async (via) => {
    const { token } = await signUp();
    const bytes = writeTiff("II", [tiledDeflatePageHeader(400, 300)], 2 * 1024 * 1024);
    const answer = via === "multipart" ? await multipart(token, bytes, "far.tif") : await viaTus(token, bytes, "far.tif");
    expect(answer.status).toBe(201);
  });

  test("an ordinary photo whose size lies past its first 4 kB of EXIF is still accepted", async () => {
    const { token } = await signUp();
    const photo = fixture("exif_jpeg/gps_nikon_coolpix_p6000.jpg");
    const answer = await viaTus(token, photo, "nikon.jpg");
    expect(answer.status).toBe(201);
  });
});

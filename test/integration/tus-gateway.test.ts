/**
 * The tus routes as a client meets them through the gateway (embedded nodes): method overrides, CORS,
 * the JSON error shape of every refusal, Upload-Metadata checked at creation, and upload ids checked
 * before they name anything on disk.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { expectErrorBody, HttpClient, signUpMember } from "../support/http-client";
import type { ApiResponse, SignedUpMember } from "../support/http-client";
import { startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture, tusUpload } from "../support/uploads";

const KiB = 1024;
const TUS = { "Tus-Resumable": "1.0.0" } as const;
const OCTETS = { "Content-Type": "application/offset+octet-stream" } as const;
const FOREIGN_ORIGIN = "https://evil.example";
const APP_ORIGIN = "https://app.example";

let node: RunningNode;
let corsNode: RunningNode;

beforeAll(async () => {
  // No processing worker: finished uploads stay as uploaded. A small quota shows whether a refused creation held any of it.
  const common = { RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000", SERVICES: "api,users,media,site", USER_QUOTA_BYTES: String(600 * KiB) };
  [node, corsNode] = await Promise.all([startNode(common), startNode({ ...common, CORS_ORIGINS: APP_ORIGIN })]);
});

afterAll(async () => {
  await stopAllNodes();
});

/** Registers from the node's own page; on corsNode without an Origin (a script), since the page's own origin is not in its CORS_ORIGINS. */
function signUp(target: RunningNode = node): Promise<SignedUpMember> {
  return signUpMember(target.baseUrl, target === corsNode ? null : target.publicUrl, { prefix: "tusgw" });
}

/** A request with the bearer token and Tus-Resumable, no Origin, no cookie. */
function tus(target: RunningNode, method: string, urlPath: string, token: string, headers: Record<string, string> = {}, body?: Uint8Array): Promise<ApiResponse> {
  const client = new HttpClient(target.baseUrl, { origin: null });
  return client.request(method, urlPath, { bearer: token, headers: { ...TUS, ...headers }, body });
}

async function create(target: RunningNode, token: string, length: number, metadata: string | undefined = `filetype ${b64("image/jpeg")}`) {
  const answer = await tus(target, "POST", "/api/uploads", token, { "Upload-Length": String(length), ...(metadata === undefined ? {} : { "Upload-Metadata": metadata }) });
  return { answer, path: answer.headers.get("location") ?? "" };
}

async function offsetOf(target: RunningNode, uploadPath: string, token: string): Promise<number | null> {
  const head = await tus(target, "HEAD", uploadPath, token);
  expect(head.status).toBe(200);
  const offset = head.headers.get("upload-offset");
  return offset === null ? null : Number(offset);
}

function b64(value: string | Buffer): string {
  return Buffer.from(value).toString("base64");
}

async function usedBytes(member: SignedUpMember, target: RunningNode = node): Promise<number> {
  const me = await new HttpClient(target.baseUrl).get<{ user: { usedBytes: number } }>("/api/users/me", { bearer: member.token });
  return me.body.user.usedBytes;
}

/** Every file under the node's upload directory. */
function uploadFiles(target: RunningNode): string[] {
  const dir = target.settings.uploads.dir;
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

/** A raw request, for what fetch will not send (a HEAD with a body). */
function rawRequest(url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers: { ...headers, ...(body ? { "Content-Length": String(body.length) } : {}) } }, (response) => {
      response.resume();
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
    });
    request.on("error", reject);
    request.end(body);
  });
}

function cookieHeader(member: SignedUpMember): string {
  return [...member.client.cookies].map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join("; ");
}

describe("the way through still works", () => {
  test("an upload sent with tus-js-client from Shoal's own page becomes a media item with its title and file name", async () => {
    const member = await signUp();
    const bytes = fixture("image_formats/png_rgba_alpha.png");
    const result = await tusUpload(bytes, {
      endpoint: `${node.baseUrl}/api/uploads`,
      token: member.token,
      chunkSize: 16 * KiB,
      metadata: { filename: "Mer du Nord.png", filetype: "image/png", title: "Mer du Nord — été" },
    });
    expect(result.mediaId).toEqual(expect.any(String));
    const media = await new HttpClient(node.baseUrl).get<{ media: { title: string; bytes: number } }>(`/api/media/${result.mediaId}`, { bearer: member.token });
    expect(media.body.media).toMatchObject({ title: "Mer du Nord — été", bytes: bytes.length });
  });
});

describe("X-HTTP-Method-Override is refused, so a HEAD cannot become a DELETE or a PATCH", () => {
  test.each([
    ["DELETE", "from a foreign page", FOREIGN_ORIGIN],
    ["PATCH", "from a foreign page", FOREIGN_ORIGIN],
    ["DELETE", "from Shoal's own page", "own"],
    ["PATCH", "from Shoal's own page", "own"],
  ])("HEAD overridden to %s with the session cookie %s answers 400 and leaves the upload as it was", async (override, _from, origin) => {
    const member = await signUp();
    const { answer, path: uploadPath } = await create(node, member.token, 1000);
    expect(answer.status).toBe(201);
    const first = await tus(node, "PATCH", uploadPath, member.token, { ...OCTETS, "Upload-Offset": "0" }, new Uint8Array(100));
    expect(first.status).toBe(204);

    const refused = await rawRequest(
      `${node.baseUrl}${uploadPath}`,
      "HEAD",
      {
        ...TUS,
        ...OCTETS,
        Cookie: cookieHeader(member),
        Origin: origin === "own" ? node.publicUrl : origin,
        ...(origin === "own" ? { "X-CSRF-Token": member.csrf } : {}),
        "X-HTTP-Method-Override": override,
        "Upload-Offset": "100",
      },
      Buffer.alloc(50, 1),
    );
    expect(refused.status).toBe(400);
    expect(refused.headers["content-type"]).toMatch(/^application\/json/);

    expect(await offsetOf(node, uploadPath, member.token)).toBe(100);
    expect(await usedBytes(member)).toBe(1000);
  });
});

describe("CORS on the tus routes follows CORS_ORIGINS only", () => {
  const preflight = (target: RunningNode, urlPath: string, origin: string) =>
    fetch(`${target.baseUrl}${urlPath}`, {
      method: "OPTIONS",
      headers: { Origin: origin, "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "tus-resumable,upload-offset,content-type" },
    });

  test("without CORS_ORIGINS, neither a preflight nor an upload request from another origin gets Access-Control-Allow-Origin", async () => {
    const member = await signUp();
    const { path: uploadPath } = await create(node, member.token, 1000);
    for (const target of ["/api/uploads", uploadPath]) {
      const answer = await preflight(node, target, FOREIGN_ORIGIN);
      expect(answer.headers.get("access-control-allow-origin")).toBeNull();
      expect(answer.headers.get("access-control-allow-credentials")).toBeNull();
    }
    const head = await new HttpClient(node.baseUrl, { origin: FOREIGN_ORIGIN }).request("HEAD", uploadPath, { bearer: member.token, headers: TUS });
    expect(head.status).toBe(200);
    expect(head.headers.get("access-control-allow-origin")).toBeNull();
    expect(head.headers.get("access-control-expose-headers")).toBeNull();
  });

  test("with CORS_ORIGINS, an allowed origin gets its own origin back with credentials, and the tus headers are exposed", async () => {
    const answer = await preflight(corsNode, "/api/uploads", APP_ORIGIN);
    expect(answer.status).toBe(204);
    expect(answer.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
    expect(answer.headers.get("access-control-allow-credentials")).toBe("true");
    const allowed = (answer.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const header of ["tus-resumable", "upload-offset", "upload-length", "upload-metadata", "content-type"]) expect(allowed).toContain(header);
    expect(answer.headers.get("access-control-allow-methods")).toContain("PATCH");

    const member = await signUp(corsNode);
    const app = new HttpClient(corsNode.baseUrl, { origin: APP_ORIGIN });
    const created = await app.request("POST", "/api/uploads", { bearer: member.token, headers: { ...TUS, "Upload-Length": "1000", "Upload-Metadata": `filetype ${b64("image/png")}` } });
    expect(created.status).toBe(201);
    expect(created.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
    expect(created.headers.get("access-control-allow-credentials")).toBe("true");
    const exposed = (created.headers.get("access-control-expose-headers") ?? "").split(",").map((name) => name.trim().toLowerCase());
    expect(exposed).toEqual(expect.arrayContaining(["location", "upload-offset", "upload-length", "tus-resumable", "shoal-media-id"]));
    // @tus/server's own list would also expose request-only headers such as X-HTTP-Method-Override.
    expect(exposed).not.toContain("x-http-method-override");
  });

  test("with CORS_ORIGINS, a preflight from an origin not listed gets no Access-Control-Allow-Origin", async () => {
    const answer = await preflight(corsNode, "/api/uploads", FOREIGN_ORIGIN);
    expect(answer.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("every tus refusal is the JSON error shape", () => {
  let member: SignedUpMember;
  let uploadPath: string;

  beforeAll(async () => {
    member = await signUp();
    ({ path: uploadPath } = await create(node, member.token, 1000));
    expect(uploadPath).toMatch(/^\/api\/uploads\/u[\w-]{21}$/);
  });

  test("a PATCH without Upload-Offset answers 400 offset_required", async () => {
    const answer = await tus(node, "PATCH", uploadPath, member.token, OCTETS, new Uint8Array(10));
    expectErrorBody(answer, 400, "offset_required", { "Upload-Offset": expect.any(String) });
    expect(await offsetOf(node, uploadPath, member.token)).toBe(0);
  });

  test("a PATCH at the wrong offset answers 409 offset_conflict", async () => {
    const answer = await tus(node, "PATCH", uploadPath, member.token, { ...OCTETS, "Upload-Offset": "7" }, new Uint8Array(10));
    expectErrorBody(answer, 409, "offset_conflict");
  });

  test("a PATCH with another content type answers 415", async () => {
    const answer = await tus(node, "PATCH", uploadPath, member.token, { "Content-Type": "application/json", "Upload-Offset": "0" }, new Uint8Array(10));
    expectErrorBody(answer, 415, "invalid_content_type");
  });

  test("more bytes than the declared length answer 413", async () => {
    const answer = await tus(node, "PATCH", uploadPath, member.token, { ...OCTETS, "Upload-Offset": "0" }, new Uint8Array(1001));
    expectErrorBody(answer, 413, "upload_length_exceeded");
    expect(await offsetOf(node, uploadPath, member.token)).toBe(0);
  });

  test("a request without Tus-Resumable, or with a version other than 1.0.0, answers 412 naming the supported version", async () => {
    const missing = await new HttpClient(node.baseUrl, { origin: null }).request("DELETE", uploadPath, { bearer: member.token });
    expectErrorBody(missing, 412, "unsupported_tus_version");
    const older = await tus(node, "DELETE", uploadPath, member.token, { "Tus-Resumable": "0.2.2" });
    expectErrorBody(older, 412, "unsupported_tus_version");
    expect(older.headers.get("tus-version")).toBe("1.0.0");
    expect(await offsetOf(node, uploadPath, member.token)).toBe(0);
  });

  test("a malformed Upload-Length answers 400 naming the header", async () => {
    const answer = await tus(node, "POST", "/api/uploads", member.token, { "Upload-Length": "ten" });
    expectErrorBody(answer, 400, "invalid_headers", { "Upload-Length": expect.any(String) });
  });

  test("Upload-Defer-Length (not supported) answers 400", async () => {
    const answer = await tus(node, "POST", "/api/uploads", member.token, { "Upload-Defer-Length": "1" });
    expectErrorBody(answer, 400, "length_required");
  });

  test("a declared length above every limit answers 413", async () => {
    const answer = await tus(node, "POST", "/api/uploads", member.token, { "Upload-Length": String(10 * 1024 ** 4) });
    expectErrorBody(answer, 413, "too_large");
  });

  test("an upload that is not there answers 404", async () => {
    const answer = await tus(node, "DELETE", "/api/uploads/uAAAAAAAAAAAAAAAAAAAAA", member.token);
    expectErrorBody(answer, 404, "not_found");
    const head = await tus(node, "HEAD", "/api/uploads/uAAAAAAAAAAAAAAAAAAAAA", member.token);
    expect(head.status).toBe(404);
    expect(head.headers.get("content-type")).toMatch(/^application\/json/);
  });

  test("an upload that is broken on our side answers the generic JSON 500", async () => {
    const other = await signUp();
    const { path: broken } = await create(node, other.token, 1000);
    // The upload's file now leads to a device where every write fails (ENOSPC), whoever writes.
    const file = path.join(node.settings.uploads.dir, broken.split("/").pop()!);
    fs.rmSync(file);
    fs.symlinkSync("/dev/full", file);
    try {
      const answer = await tus(node, "PATCH", broken, other.token, { ...OCTETS, "Upload-Offset": "0" }, new Uint8Array(10));
      const body = expectErrorBody(answer, 500, "internal");
      expect(body.error.message).toMatch(/logged/);
    } finally {
      fs.rmSync(file);
    }
  });
});

describe("Upload-Metadata is checked when the upload is created", () => {
  const title = (value: string | Buffer) => `filetype ${b64("image/jpeg")},title ${b64(value)}`;
  const filename = (value: string | Buffer) => `filetype ${b64("image/jpeg")},filename ${b64(value)}`;
  const cases: [string, string, number, string, Record<string, unknown>][] = [
    ["a value that is not base64", `filetype ${b64("image/jpeg")},title not*base64`, 400, "invalid_metadata", {}],
    ["a value whose base64 is not canonical", `filetype ${b64("image/jpeg")},title QR==`, 400, "invalid_metadata", { title: expect.any(String) }],
    ["a title that is not UTF-8", title(Buffer.from([0x53, 0x65, 0x61, 0xff, 0xfe])), 400, "invalid_metadata", { title: expect.any(String) }],
    ["a title longer than 200 characters", title("é".repeat(201)), 422, "validation_failed", { title: expect.any(String) }],
    ["a file name longer than 255 characters", filename(`${"a".repeat(252)}.jpg`), 422, "validation_failed", { filename: expect.any(String) }],
    ["a title with a NUL", title("Sea\u0000side"), 422, "validation_failed", { title: expect.any(String) }],
    ["a file name with a line break", filename("sea\r\nside.jpg"), 422, "validation_failed", { filename: expect.any(String) }],
    ["a file type with a control character", `filetype ${b64("image/jpeg\u001b")}`, 422, "validation_failed", { filetype: expect.any(String) }],
  ];

  test.each(cases)("%s is refused before anything is reserved or stored", async (_what, metadata, status, code, fields) => {
    const member = await signUp();
    const before = uploadFiles(node);
    const { answer } = await create(node, member.token, 500 * KiB, metadata);
    const body = expectErrorBody(answer, status, code);
    if (Object.keys(fields).length > 0) expect(body.error.fields).toEqual(fields);
    expect(answer.headers.get("location")).toBeNull();
    expect(uploadFiles(node)).toEqual(before);
    expect(await usedBytes(member)).toBe(0);
    // Had the refused creation held its 500 KiB, this one would not fit in the 600 KiB quota.
    const { answer: valid } = await create(node, member.token, 500 * KiB, title("Seaside"));
    expect(valid.status).toBe(201);
  });

  test("titles and file names at their limits, in any script, are accepted", async () => {
    const member = await signUp();
    const metadata = `filetype ${b64("video/mp4")},title ${b64("海".repeat(200))},filename ${b64(`${"ß".repeat(251)}.mp4`)}`;
    const { answer } = await create(node, member.token, 1000, metadata);
    expect(answer.status).toBe(201);
  });
});

describe("upload ids are checked before they name anything", () => {
  let member: SignedUpMember;

  beforeAll(async () => {
    member = await signUp();
  });

  test.each([
    ["a path climbing out of the upload directory", "..%2F..%2Fetc%2Fpasswd"],
    ["encoded dot segments", "%2E%2E%2F%2E%2E%2Fpasswd"],
    ["an id with dots", "u....................."],
    ["an id with an encoded slash", "uAAAAAAAAAA%2FAAAAAAAAAA"],
    ["an over-long id", `u${"A".repeat(200)}`],
    ["an id of another shape", "0123456789abcdef0123456789abcdef"],
  ])("%s answers 404 in the JSON shape", async (_what, id) => {
    const deleted = await tus(node, "DELETE", `/api/uploads/${id}`, member.token);
    expectErrorBody(deleted, 404, "not_found");
    const head = await tus(node, "HEAD", `/api/uploads/${id}`, member.token);
    expect(head.status).toBe(404);
    expect(head.headers.get("content-type")).toMatch(/^application\/json/);
  });

  test("a file outside the upload directory that looks like an upload of the caller's can be neither read nor deleted", async () => {
    // What a path in the id would reach: <data dir>/planted and its .json, made to look like the caller's upload.
    const planted = path.join(node.settings.dataDir, `planted-${member.id}`);
    fs.writeFileSync(planted, Buffer.alloc(10));
    fs.writeFileSync(`${planted}.json`, JSON.stringify({ id: "planted", size: 10, offset: 0, metadata: { ownerId: member.id } }));
    const id = encodeURIComponent(`../${path.basename(planted)}`);
    expect(path.resolve(node.settings.uploads.dir, "..")).toBe(path.resolve(node.settings.dataDir));

    const head = await tus(node, "HEAD", `/api/uploads/${id}`, member.token);
    expect(head.status).toBe(404);
    const deleted = await tus(node, "DELETE", `/api/uploads/${id}`, member.token);
    expectErrorBody(deleted, 404, "not_found");
    expect(fs.existsSync(planted)).toBe(true);
    expect(fs.existsSync(`${planted}.json`)).toBe(true);
  });
});

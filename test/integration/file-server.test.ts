/**
 * The file server over real HTTP: mounted at /files/ on a plain node:http server, serving a LocalStorage
 * in a temporary directory. Requests go out through http.request so that paths reach the server exactly
 * as written (fetch would resolve "../" before sending).
 */
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { createFileServer } from "../../lib/http/file-server";
import { LocalStorage } from "../../lib/storage/local-storage";
import { originalKey, variantKey } from "../../lib/storage/object-keys";
import { signFileUrl, UrlSigner } from "../../lib/storage/signed-url";

const SECRET = randomBytes(32).toString("base64url");
const FIXTURES = path.join(__dirname, "..", "fixtures");
const OUTSIDE_CONTENT = "TOP SECRET, outside the storage directory";

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

let root: string;
let storage: LocalStorage;
let server: http.Server;
let port: number;

function request(target: string, options: { method?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: target, method: options.method ?? "GET", headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Signed as LocalStorage would, but for any key and expiry (including ones LocalStorage refuses to sign). */
function signedFor(key: string, options: { expires?: number; downloadName?: string } = {}): string {
  return signFileUrl(SECRET, { key, expires: options.expires ?? nowSeconds() + 300, downloadName: options.downloadName });
}

function expectErrorBody(reply: Reply, status: number, code: string): void {
  expect(reply.status).toBe(status);
  expect(reply.headers["content-type"]).toBe("application/json; charset=utf-8");
  expect(reply.headers["cache-control"]).toBe("no-store");
  const body = JSON.parse(reply.body.toString("utf8")) as { error: { code: string; message: string; fields: object } };
  expect(body).toEqual({ error: { code, message: expect.any(String), fields: {} } });
  expect(reply.body.toString("utf8")).not.toContain(OUTSIDE_CONTENT);
}

async function putBytes(key: string, data: Buffer, contentType: string): Promise<void> {
  await storage.put(key, Readable.from([data], { objectMode: false }), contentType);
}

const data = randomBytes(10_000);
const key = originalKey("A1b2C3d4E5f6G7h8", "jpg");

beforeAll(async () => {
  root = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-files-"));
  await fs.promises.writeFile(path.join(root, "outside.jpg"), OUTSIDE_CONTENT);
  storage = new LocalStorage(path.join(root, "objects"), new UrlSigner(SECRET));
  const files = createFileServer({ storage, secret: SECRET });
  server = http.createServer((req, res) => {
    // Mounted as the gateway will: everything under /files/ goes to the file server.
    if (req.url?.startsWith("/files/")) return files(req, res);
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  await putBytes(key, data, "image/jpeg");
});

afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await fs.promises.rm(root, { recursive: true, force: true });
});

describe("a valid signed URL", () => {
  it("serves the whole file with type, validators, caching and security headers", async () => {
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    const reply = await request(url);
    const head = await storage.head(key);

    expect(reply.status).toBe(200);
    expect(reply.body).toEqual(data);
    expect(reply.headers).toMatchObject({
      "content-type": "image/jpeg",
      "content-length": String(data.length),
      "accept-ranges": "bytes",
      "x-content-type-options": "nosniff",
      etag: head!.etag,
      "last-modified": head!.lastModified.toUTCString(),
    });
    // Strong: no W/ prefix.
    expect(reply.headers.etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    // Kept by the browser alone, without revalidation, for what is left of the URL: more than half its lifetime.
    const maxAge = Number(/^private, max-age=(\d+), immutable$/.exec(reply.headers["cache-control"] ?? "")?.[1]);
    expect(maxAge).toBeGreaterThan(145);
    expect(maxAge).toBeLessThanOrEqual(300);
    expect(reply.headers["content-disposition"]).toBeUndefined();
  });

  it("answers HEAD with the same headers and no body", async () => {
    const reply = await request(await storage.signedUrl(key, { expiresInSeconds: 300 }), { method: "HEAD" });
    expect(reply.status).toBe(200);
    expect(reply.headers["content-length"]).toBe(String(data.length));
    expect(reply.headers["content-type"]).toBe("image/jpeg");
    expect(reply.body.length).toBe(0);
  });

  it("serves bytes=0-99 as 206 with 100 bytes and Content-Range", async () => {
    const reply = await request(await storage.signedUrl(key, { expiresInSeconds: 300 }), { headers: { Range: "bytes=0-99" } });
    expect(reply.status).toBe(206);
    expect(reply.headers["content-range"]).toBe(`bytes 0-99/${data.length}`);
    expect(reply.headers["content-length"]).toBe("100");
    expect(reply.body).toEqual(data.subarray(0, 100));
  });

  it("serves a suffix range bytes=-100 as the last 100 bytes", async () => {
    const reply = await request(await storage.signedUrl(key, { expiresInSeconds: 300 }), { headers: { Range: "bytes=-100" } });
    expect(reply.status).toBe(206);
    expect(reply.headers["content-range"]).toBe(`bytes ${data.length - 100}-${data.length - 1}/${data.length}`);
    expect(reply.body).toEqual(data.subarray(data.length - 100));
  });

  it("serves a suffix longer than the file as the whole file (RFC 9110 §14.1.3), not 416", async () => {
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    for (const range of [`bytes=-${data.length}`, `bytes=-${data.length + 2316}`, "bytes=-99999999999999999999999"]) {
      const reply = await request(url, { headers: { Range: range } });
      expect([range, reply.status, reply.headers["content-range"]]).toEqual([range, 206, `bytes 0-${data.length - 1}/${data.length}`]);
      expect(reply.body).toEqual(data);
    }
  });

  it("skips empty items of a range list (RFC 9110 §5.6.1) rather than ignoring the whole header", async () => {
    const reply = await request(await storage.signedUrl(key, { expiresInSeconds: 300 }), { headers: { Range: "bytes=0-99, ,," } });
    expect(reply.status).toBe(206);
    expect(reply.headers["content-range"]).toBe(`bytes 0-99/${data.length}`);
    expect(reply.body).toEqual(data.subarray(0, 100));
  });

  it("answers an unsatisfiable range with 416, Content-Range bytes */size and the JSON error", async () => {
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    for (const range of [`bytes=${data.length}-`, `bytes=${data.length + 100}-${data.length + 200}`]) {
      const reply = await request(url, { headers: { Range: range } });
      expectErrorBody(reply, 416, "range_not_satisfiable");
      expect(reply.headers["content-range"]).toBe(`bytes */${data.length}`);
      expect(reply.headers.etag).toBeUndefined();
    }
  });

  it("ignores a malformed Range and sends the whole file (RFC 9110), where a well-formed one that does not fit gets 416", async () => {
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    for (const range of ["bytes=abc", "bytes=abc-", "bytes=x-5", "bytes=5-2", "bytes=-", "bytes=", "bytes=0-1;x"]) {
      const reply = await request(url, { headers: { Range: range } });
      expect([range, reply.status, reply.headers["content-range"]]).toEqual([range, 200, undefined]);
      expect(reply.body).toEqual(data);
    }
    const unsatisfiable = await request(url, { headers: { Range: `bytes=${data.length}-` } });
    expectErrorBody(unsatisfiable, 416, "range_not_satisfiable");
  });

  it("sends files and errors in a sandbox that nothing can run in, for this origin only, never sniffed", async () => {
    const expected = {
      "content-security-policy": "default-src 'none'; sandbox",
      "cross-origin-resource-policy": "same-origin",
      "x-content-type-options": "nosniff",
    };
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    const file = await request(url);
    expect(file.status).toBe(200);
    expect(file.headers).toMatchObject(expected);
    const ranged = await request(url, { headers: { Range: "bytes=0-9" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers).toMatchObject(expected);
    const refused = await request(signedFor(key, { expires: nowSeconds() - 1 }));
    expect(refused.status).toBe(403);
    expect(refused.headers).toMatchObject(expected);
  });

  it("answers If-None-Match with the current ETag with 304", async () => {
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    const { etag } = (await request(url)).headers;
    const reply = await request(url, { headers: { "If-None-Match": etag } });
    expect(reply.status).toBe(304);
    expect(reply.body.length).toBe(0);
    expect(reply.headers.etag).toBe(etag);
    expect(reply.headers["cache-control"]).toMatch(/^private, max-age=\d+, immutable$/);

    const stale = await request(url, { headers: { "If-None-Match": '"0-0"' } });
    expect(stale.status).toBe(200);
  });

  it("answers If-Modified-Since at the Last-Modified time with 304", async () => {
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    const lastModified = (await request(url)).headers["last-modified"]!;
    expect((await request(url, { headers: { "If-Modified-Since": lastModified } })).status).toBe(304);
    const earlier = new Date(Date.parse(lastModified) - 60_000).toUTCString();
    expect((await request(url, { headers: { "If-Modified-Since": earlier } })).status).toBe(200);
  });

  it("ignores a Range whose If-Range names another version", async () => {
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    const reply = await request(url, { headers: { Range: "bytes=0-99", "If-Range": '"0-0"' } });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual(data);
  });

  it("offers the file as a download under the name it was signed with", async () => {
    const plain = await request(await storage.signedUrl(key, { expiresInSeconds: 300, downloadName: "holiday.jpg" }));
    expect(plain.status).toBe(200);
    expect(plain.headers["content-disposition"]).toBe('attachment; filename="holiday.jpg"');

    const accented = await request(await storage.signedUrl(key, { expiresInSeconds: 300, downloadName: "été 2024.jpg" }));
    expect(accented.headers["content-disposition"]).toBe(`attachment; filename="_t_ 2024.jpg"; filename*=UTF-8''%C3%A9t%C3%A9%202024.jpg`);
  });

  it("sends the content type the object was stored with, else the one its extension implies", async () => {
    const id = "TypesTypes01";
    const stored: Array<[string, string]> = [
      [variantKey(id, "display", "webp"), "image/webp"],
      [variantKey(id, "transcode", "mp4"), "video/mp4"],
      [variantKey(id, "audio", "m4a"), "audio/mp4"],
      [variantKey(id, "waveform", "json"), "application/json"],
    ];
    for (const [storedKey, type] of stored) {
      await putBytes(storedKey, Buffer.from("x"), type);
      const reply = await request(await storage.signedUrl(storedKey, { expiresInSeconds: 60 }));
      expect([storedKey, reply.headers["content-type"]]).toEqual([storedKey, type]);
    }
    // Written without LocalStorage, so without metadata.
    await fs.promises.writeFile(path.join(storage.directory, "media", id, "poster.webp"), "x");
    const bare = await request(await storage.signedUrl(`media/${id}/poster.webp`, { expiresInSeconds: 60 }));
    expect(bare.headers["content-type"]).toBe("image/webp");
  });

  it("sends types that a browser could run (HTML, SVG, unknown) as attachments only", async () => {
    const id = "ActiveContent01";
    for (const [name, type] of [
      ["page.html", "text/html; charset=utf-8"],
      ["drawing.svg", "image/svg+xml"],
      ["blob.bin", "application/octet-stream"],
    ] as const) {
      await putBytes(`media/${id}/${name}`, Buffer.from("<script>alert(1)</script>"), type);
      const reply = await request(await storage.signedUrl(`media/${id}/${name}`, { expiresInSeconds: 60 }));
      expect([name, reply.status, reply.headers["content-type"], reply.headers["content-disposition"]]).toEqual([name, 200, type, "attachment"]);
    }
    const image = await request(await storage.signedUrl(key, { expiresInSeconds: 60 }));
    expect(image.headers["content-disposition"]).toBeUndefined();
  });

  it("serves a real video fixture byte for byte, and ranges inside it", async () => {
    const manifest = await fs.promises.readFile(path.join(FIXTURES, "MANIFEST.tsv"), "utf8");
    const row = manifest.split("\n").find((line) => line.startsWith("video/webm_vp9_bbb_10s.webm\t"));
    const [, bytes, sha256] = row!.split("\t");
    const fixtureKey = originalKey("BigBuckBunny10s", "webm");
    await storage.put(fixtureKey, fs.createReadStream(path.join(FIXTURES, "video", "webm_vp9_bbb_10s.webm")), "video/webm");

    const url = await storage.signedUrl(fixtureKey, { expiresInSeconds: 300 });
    const whole = await request(url);
    expect(whole.status).toBe(200);
    expect(whole.headers["content-type"]).toBe("video/webm");
    expect(whole.body.length).toBe(Number(bytes));
    expect(createHash("sha256").update(whole.body).digest("hex")).toBe(sha256);

    // What a video element asks for first.
    const start = await request(url, { headers: { Range: "bytes=0-" } });
    expect(start.status).toBe(206);
    expect(start.headers["content-range"]).toBe(`bytes 0-${Number(bytes) - 1}/${bytes}`);
    const middle = await request(url, { headers: { Range: "bytes=100000-149999" } });
    expect(middle.body).toEqual(whole.body.subarray(100_000, 150_000));
  });
});

describe("a URL that is not valid", () => {
  it("answers an expired URL with 403", async () => {
    const reply = await request(signedFor(key, { expires: nowSeconds() - 1 }));
    expectErrorBody(reply, 403, "forbidden");
    expect(JSON.parse(reply.body.toString()).error.message).toBe("This link has expired.");
  });

  it("answers a tampered signature with 403", async () => {
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    const tampered = url.replace(/signature=(.)/, (_match, first: string) => `signature=${first === "A" ? "B" : "A"}`);
    expectErrorBody(await request(tampered), 403, "forbidden");
  });

  it("answers a tampered key with 403", async () => {
    const other = originalKey("Z9y8X7w6V5u4", "jpg");
    await putBytes(other, Buffer.from("someone else's photo"), "image/jpeg");
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    expectErrorBody(await request(url.replace(key, other)), 403, "forbidden");
  });

  it("answers a tampered expiry, an added download name or missing parameters with 403", async () => {
    const url = await storage.signedUrl(key, { expiresInSeconds: 300 });
    expectErrorBody(await request(url.replace(/expires=(\d+)/, (_m, e: string) => `expires=${Number(e) + 3600}`)), 403, "forbidden");
    expectErrorBody(await request(url.replace("&signature", "&download=evil.html&signature")), 403, "forbidden");
    expectErrorBody(await request(`/files/${key}`), 403, "forbidden");
    expectErrorBody(await request(url.replace(/&signature=[^&]+/, "")), 403, "forbidden");
  });

  it("answers a validly signed URL for a missing object with 404", async () => {
    expectErrorBody(await request(await storage.signedUrl(originalKey("NoSuchMedia01", "jpg"), { expiresInSeconds: 60 })), 404, "not_found");
    // A key that names a directory is no object either.
    expectErrorBody(await request(signedFor("media")), 404, "not_found");
  });

  it("answers methods other than GET and HEAD with 405", async () => {
    const reply = await request(await storage.signedUrl(key, { expiresInSeconds: 60 }), { method: "DELETE" });
    expectErrorBody(reply, 405, "method_not_allowed");
    expect(reply.headers.allow).toBe("GET, HEAD");
    expect(await storage.head(key)).toBeDefined();
  });
});

describe("path traversal", () => {
  const attempts = [
    "../outside.jpg",
    "../../outside.jpg",
    "media/../../outside.jpg",
    "%2e%2e/outside.jpg",
    "..%2Foutside.jpg",
    "..%5Coutside.jpg",
    "media/..%2F..%2Foutside.jpg",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "media%00/x.jpg",
  ];

  it.each(attempts)("refuses an unsigned /files/%s with 403", async (attempt) => {
    const expires = nowSeconds() + 300;
    const reply = await request(`/files/${attempt}?expires=${expires}&signature=${"A".repeat(43)}`);
    expectErrorBody(reply, 403, "forbidden");
  });

  it.each(attempts)("answers /files/%s with 404 even when signed with the secret", async (attempt) => {
    // Only possible for someone holding the secret: shows that the key rules hold on their own.
    const decoded = attempt.split("/").map(decodeURIComponent).join("/");
    const query = new URLSearchParams(signedFor(decoded).split("?")[1]);
    const [expires, signature] = [query.get("expires")!, query.get("signature")!];
    expectErrorBody(await request(`/files/${attempt}?expires=${expires}&signature=${signature}`), 404, "not_found");
  });

  it("does not serve the metadata and temporary dot-files beside objects", async () => {
    const id = "A1b2C3d4E5f6G7h8";
    const entries = await fs.promises.readdir(path.join(storage.directory, "media", id));
    const dotFiles = entries.filter((name) => name.startsWith("."));
    expect(dotFiles).toContain(".original.jpg.meta.json");
    for (const name of dotFiles) expectErrorBody(await request(signedFor(`media/${id}/${name}`)), 404, "not_found");
  });
});

import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalStorage } from "../../lib/storage/local-storage";
import { mediaPrefix, originalKey, variantKey } from "../../lib/storage/object-keys";
import { InvalidObjectKeyError } from "../../lib/storage/storage-rules";
import { UrlSigner } from "../../lib/storage/signed-url";
import { newMediaId, readAll, streamOf } from "../support/byte-streams";
import { sha256 } from "../support/uploads";

const SECRET = randomBytes(32).toString("base64url");
const MiB = 1024 * 1024;

describe("LocalStorage on disk", () => {
  let root: string;
  let dir: string;
  let storage: LocalStorage;

  /** Every entry under the storage directory, dot-files included. */
  async function everything(): Promise<string[]> {
    const entries = await fs.promises.readdir(dir, { recursive: true });
    return entries.map((entry) => entry.split(path.sep).join("/")).sort();
  }

  beforeEach(async () => {
    root = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-local-"));
    dir = path.join(root, "objects");
    storage = new LocalStorage(dir, new UrlSigner(SECRET));
    await storage.check();
  });

  afterEach(async () => {
    await fs.promises.rm(root, { recursive: true, force: true });
  });

  it("keeps the bytes at <dir>/<key> with the content type in a dot-file beside them", async () => {
    const id = newMediaId();
    await storage.put(originalKey(id, "jpg"), streamOf(Buffer.from("jpeg bytes")), "image/jpeg");
    expect(await everything()).toEqual(["media", `media/${id}`, `media/${id}/.original.jpg.meta.json`, `media/${id}/original.jpg`]);
    expect(await fs.promises.readFile(path.join(dir, "media", id, "original.jpg"), "utf8")).toBe("jpeg bytes");
  });

  it("leaves no temporary file or directory behind when a put fails", async () => {
    const data = randomBytes(3_000_000);
    await expect(storage.put(originalKey(newMediaId(), "jpg"), streamOf(data, { failAfter: 1_000_000 }), "image/jpeg")).rejects.toThrow("source failed");
    expect(await everything()).toEqual([]);
  });

  it("removes directories that deletes leave empty", async () => {
    const id = newMediaId();
    const keep = newMediaId();
    await storage.put(originalKey(id, "jpg"), streamOf(Buffer.from("a")), "image/jpeg");
    await storage.put(variantKey(id, "thumb", "webp"), streamOf(Buffer.from("b")), "image/webp");
    await storage.put(originalKey(keep, "jpg"), streamOf(Buffer.from("c")), "image/jpeg");

    await storage.delete(originalKey(keep, "jpg"));
    expect(await everything()).not.toContain(`media/${keep}`);
    expect(await storage.deletePrefix(mediaPrefix(id))).toBe(2);
    expect(await everything()).toEqual([]);
    // And the store still works afterwards.
    await storage.put(originalKey(id, "jpg"), streamOf(Buffer.from("again")), "image/jpeg");
    expect((await storage.head(originalKey(id, "jpg")))?.bytes).toBe(5);
  });

  it("never reads a file outside its directory", async () => {
    await fs.promises.writeFile(path.join(root, "outside.jpg"), "secret");
    for (const key of ["../outside.jpg", "media/../../outside.jpg", `${root}/outside.jpg`]) {
      await expect(storage.get(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
      await expect(storage.head(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
    }
    expect(await storage.list("")).toEqual([]);
  });

  it("takes the content type from the extension for a file stored without metadata", async () => {
    const id = newMediaId();
    await fs.promises.mkdir(path.join(dir, "media", id), { recursive: true });
    for (const [name, type] of [
      ["audio.m4a", "audio/mp4"],
      ["clip.mp4", "video/mp4"],
      ["display.webp", "image/webp"],
      ["original.jpg", "image/jpeg"],
      ["probe.json", "application/json"],
      ["blob.bin", "application/octet-stream"],
    ] as const) {
      await fs.promises.writeFile(path.join(dir, "media", id, name), "x");
      expect((await storage.head(`media/${id}/${name}`))?.contentType).toBe(type);
    }
  });

  it("lets a reader that started before an overwrite finish reading the old version", async () => {
    const key = originalKey(newMediaId(), "mp4");
    const before = randomBytes(3 * MiB);
    const after = randomBytes(2 * MiB);
    await storage.put(key, streamOf(before), "video/mp4");

    const reading = await storage.get(key);
    await storage.put(key, streamOf(after), "video/mp4");
    expect(reading.info.bytes).toBe(before.length);
    expect(sha256(await readAll(reading.body))).toBe(sha256(before));
    expect(sha256(await readAll((await storage.get(key)).body))).toBe(sha256(after));
  });

  it("signs relative /files/ URLs", async () => {
    const key = originalKey(newMediaId(), "jpg");
    const url = await storage.signedUrl(key, { expiresInSeconds: 60, downloadName: "a b.jpg" });
    expect(url).toMatch(new RegExp(`^/files/${key}\\?expires=\\d+&download=a\\+b\\.jpg&signature=[A-Za-z0-9_-]{43}$`));
  });
});

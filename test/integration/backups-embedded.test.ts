import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseSettings } from "../../config/settings";
import { listManifests } from "../../lib/backups/backup-files";
import type { CatalogueEntry } from "../../lib/backups/catalogue";
import type { DrillResult } from "../../lib/backups/drill";
import { mediaFilesRestore } from "../../lib/backups/object-files";
import { runRestore } from "../../lib/backups/restore-command";
import { LocalStorage } from "../../lib/storage/local-storage";
import { UrlSigner } from "../../lib/storage/signed-url";
import { HttpClient, memberCredentials, signUpMember } from "../support/http-client";
import type { SignedUpMember } from "../support/http-client";
import { eventually, startNode, stopNode, stopAllNodes } from "../support/nodes";
import { fixture, tusUpload } from "../support/uploads";
import type { RunningNode } from "../support/nodes";
import { signIn } from "../support/sockets";

const admin = { meta: { user: { id: "operator", role: "admin", username: "operator" } } };
const key = randomBytes(32);
let root: string;
let env: Record<string, string>;
let node: RunningNode;
let member: SignedUpMember;

interface BackupNow {
  backups: { database: string; id: string; error?: string; files?: { copied: number; copiedBytes: number; unchanged: number } }[];
  drills: DrillResult[];
}

interface MediaAnswer {
  media: { id: string; status: string; originalUrl: string | null; variants: { name: string; url: string }[] };
}

/** Uploads an image as the member and waits until it is ready; answers the item with its original and variants. */
async function uploadReady(file: string): Promise<MediaAnswer["media"]> {
  const { mediaId } = await tusUpload(fixture(file), { endpoint: `${node.baseUrl}/api/uploads`, token: member.token, metadata: { filename: path.basename(file) } });
  const client = new HttpClient(node.baseUrl, { origin: null });
  const ready = await eventually(
    async () => (await client.get<MediaAnswer>(`/api/media/${mediaId ?? ""}`, { bearer: member.token })).body.media,
    (media) => media?.status === "ready",
    60_000,
  );
  return ready;
}

/** The bytes of the item's original and of each variant, by name, as downloaded through their URLs. */
async function downloads(id: string): Promise<Record<string, string>> {
  const client = new HttpClient(node.baseUrl, { origin: null });
  const { media } = (await client.get<MediaAnswer>(`/api/media/${id}`, { bearer: member.token })).body;
  const files: Record<string, string> = {};
  for (const [name, url] of [["original", media.originalUrl ?? ""], ...media.variants.map((variant) => [variant.name, variant.url])] as [string, string][]) {
    const answer = await fetch(new URL(url, node.baseUrl));
    expect(answer.status).toBe(200);
    files[name] = Buffer.from(await answer.arrayBuffer()).toString("base64");
  }
  return files;
}

let photo: MediaAnswer["media"];
let photoFiles: Record<string, string>;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-backups-embedded-"));
  env = { SHOAL_DATA_DIR: path.join(root, "data"), BACKUP_DIR: path.join(root, "backups"), BACKUP_ENCRYPTION_KEY: key.toString("base64") };
  node = await startNode(env);
  member = await signUpMember(node.baseUrl, null, { prefix: "bk" });
  photo = await uploadReady("image_formats/png_rgba_alpha.png");
  photoFiles = await downloads(photo.id);
}, 120_000);

afterAll(async () => {
  await stopAllNodes();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("embedded backups", () => {
  it("backs up the three databases on demand, drills each, and lists them as verified", async () => {
    const result = await node.broker.call<BackupNow, object>("backup.backupNow", {});
    expect(result.backups.map((backup) => [backup.database, backup.error])).toEqual([
      ["membership", undefined],
      ["media", undefined],
      ["site", undefined],
    ]);
    expect(result.drills.map((drill) => [drill.database, drill.outcome, drill.reason])).toEqual([
      ["membership", "passed", null],
      ["media", "passed", null],
      ["site", "passed", null],
    ]);
    // The item's original and each variant, each content stored once.
    expect(result.backups.find((backup) => backup.database === "media")?.files).toMatchObject({ copied: 1 + photo.variants.length, unchanged: 0 });
    const { backups } = await node.broker.call<{ backups: CatalogueEntry[] }, object>("backup.list", {}, admin);
    expect(backups).toHaveLength(3);
    for (const backup of backups) expect(backup).toMatchObject({ status: "succeeded", verified: true, drill: { outcome: "passed", reason: null } });
    const report = await node.runtime.health.run();
    expect(report.checks.backups).toMatchObject({ status: "ok", lastVerifiedAt: expect.any(String) });
  }, 120_000);

  it("GET /api/admin/backups lists the catalogue to admins; POST starts a backup; members are refused", async () => {
    const operator = memberCredentials("bkop");
    await node.broker.call("users.create", { ...operator, role: "admin" });
    const adminToken = await signIn(node.baseUrl, operator.username, operator.password);
    const client = new HttpClient(node.baseUrl, { origin: null });
    const listed = await client.get<{ backups: CatalogueEntry[] }>("/api/admin/backups", { bearer: adminToken });
    expect(listed.status).toBe(200);
    expect(listed.body.backups.map((backup) => backup.database).sort()).toEqual(["media", "membership", "site"]);
    expect(listed.body.backups[0]).toMatchObject({ verified: true, drill: { outcome: "passed", at: expect.any(String), reason: null } });
    expect((await client.get("/api/admin/backups", { bearer: member.token })).status).toBe(403);
    const started = await client.post<{ started: boolean; databases: string[] }>("/api/admin/backups", { database: "site" }, { bearer: adminToken });
    expect(started.status).toBe(202);
    expect(started.body).toEqual({ started: true, databases: ["site"] });
    const done = async () => (await client.get<{ backups: CatalogueEntry[] }>("/api/admin/backups", { bearer: adminToken })).body.backups;
    const { eventually } = await import("../support/nodes");
    const after = await eventually(done, (backups) => backups.length === 4 && backups.every((backup) => backup.drill !== null), 30_000);
    expect(after[0]).toMatchObject({ database: "site", status: "succeeded", verified: true });
  }, 120_000);

  it("a drill of a corrupted backup fails: health is degraded and the failure is in the audit log", async () => {
    const storage = new LocalStorage(env.BACKUP_DIR as string, new UrlSigner("unused-in-this-test"));
    const { manifests } = await listManifests(storage, "membership", key);
    const newest = manifests[manifests.length - 1];
    const file = storage.filePath(newest?.objectKey ?? "");
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 40] ^= 0x01;
    fs.writeFileSync(file, bytes);

    const drills = await node.broker.call<DrillResult[], object>("backup.drillNow", { database: "membership" });
    expect(drills[0]).toMatchObject({ outcome: "failed", reason: expect.stringContaining("does not match its manifest") });
    const report = await node.runtime.health.run();
    expect(report.status).toBe("degraded");
    expect(report.checks.backups).toMatchObject({ status: "degraded", problems: [expect.stringContaining("failed")] });
    const audit = await node.broker.call<{ items: { action: string }[] }, object>("site.listAudit", {}, admin);
    expect(audit.items.map((item) => item.action)).toContain("backup.drill.failed");
    fs.writeFileSync(file, Buffer.from(bytes.map((byte, index) => (index === bytes.length - 40 ? byte ^ 0x01 : byte))));
  }, 120_000);

  it("copies the media files incrementally: a second backup copies none, a new item's files are copied", async () => {
    const again = await node.broker.call<BackupNow, object>("backup.backupNow", { database: "media" });
    expect(again.backups[0]?.files).toEqual({ copied: 0, copiedBytes: 0, unchanged: 1 + photo.variants.length });
    const second = await uploadReady("image_formats/jpeg_progressive_nikon.jpeg");
    const after = await node.broker.call<BackupNow, object>("backup.backupNow", { database: "media" });
    // Keyed by content: a file whose content is stored already (the same bytes under another key) is not copied either.
    const known = new Set(Object.values(photoFiles));
    const secondContents = new Set(Object.values(await downloads(second.id)));
    const fresh = [...secondContents].filter((content) => !known.has(content)).length;
    expect(fresh).toBeGreaterThan(0);
    expect(after.backups[0]?.files).toMatchObject({ copied: fresh, unchanged: 2 + photo.variants.length + second.variants.length - fresh });
    // Stored encrypted: no stored content begins with the PNG or JPEG signature.
    const stored = new LocalStorage(env.BACKUP_DIR as string, new UrlSigner("unused-in-this-test"));
    const contents = await stored.list("backups/objects/sha256/");
    expect(contents).toHaveLength(new Set([...known, ...secondContents]).size);
    for (const info of contents) {
      const head = fs.readFileSync(stored.filePath(info.key)).subarray(0, 4).toString("hex");
      expect(["89504e47", "ffd8ffe0", "ffd8ffe1"]).not.toContain(head);
    }
  }, 240_000);

  it("a drill reports a media file missing from storage and fails", async () => {
    const media = node.runtime.storage as LocalStorage;
    const { media: item } = (await new HttpClient(node.baseUrl, { origin: null }).get<MediaAnswer>(`/api/media/${photo.id}`, { bearer: member.token })).body;
    const variantKey = (await media.list(`media/${item.id}/`)).map((info) => info.key).find((key) => !key.includes("original"));
    const file = media.filePath(variantKey ?? "");
    const saved = fs.readFileSync(file);
    fs.rmSync(file);
    try {
      const drills = await node.broker.call<DrillResult[], object>("backup.drillNow", { database: "media" });
      expect(drills[0]).toMatchObject({ outcome: "failed", missingObjects: 1, reason: expect.stringContaining("1 stored files the media database names are missing") });
    } finally {
      fs.writeFileSync(file, saved);
    }
    const drills = await node.broker.call<DrillResult[], object>("backup.drillNow", { database: "media" });
    expect(drills[0]).toMatchObject({ outcome: "passed", missingObjects: 0 });
  }, 120_000);

  it("after the data directory is lost, the restored databases bring the site back", async () => {
    await stopNode(node);
    fs.rmSync(env.SHOAL_DATA_DIR as string, { recursive: true, force: true });
    const settings = parseSettings(env);
    const storage = new LocalStorage(settings.backups.dir, new UrlSigner("unused-in-this-test"));
    const lines: string[] = [];
    const audited: [string, Record<string, unknown>][] = [];
    const media = new LocalStorage(settings.dataDir, new UrlSigner("unused-in-this-test"));
    for (const database of ["membership", "media", "site"] as const) {
      const target = { kind: "sqlite" as const, file: path.join(settings.dataDir, `${database}.sqlite`) };
      const restoreFiles = mediaFilesRestore({ backups: storage, key, media, target, localStore: (dir) => new LocalStorage(dir, new UrlSigner("unused")) });
      await runRestore(
        { database, point: { kind: "newest" }, target, force: false },
        { storage, key, print: (line) => lines.push(line), audit: async (action, detail) => void audited.push([action, detail]), ...(restoreFiles ? { restoreFiles } : {}) },
      );
    }
    expect(lines.filter((line) => line.startsWith("checked "))).toHaveLength(3);
    expect(lines).toContainEqual(expect.stringMatching(/^restored \d+ media files \(\d+ bytes\) into .*objects, each matching its SHA-256$/));
    expect(audited.map(([action, detail]) => [action, detail.database])).toEqual([
      ["backup.restored", "membership"],
      ["backup.restored", "media"],
      ["backup.restored", "site"],
    ]);
    node = await startNode(env);
    member = { ...member, token: await signIn(node.baseUrl, member.username, member.password) };
    expect(member.token).toEqual(expect.any(String));
    // The site comes back with its files: the item's original and every variant, byte for byte.
    expect(await downloads(photo.id)).toEqual(photoFiles);
  }, 120_000);
});

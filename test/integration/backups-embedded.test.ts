import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseSettings } from "../../config/settings";
import { listManifests } from "../../lib/backups/backup-files";
import type { CatalogueEntry } from "../../lib/backups/catalogue";
import type { DrillResult } from "../../lib/backups/drill";
import { runRestore } from "../../lib/backups/restore-command";
import { LocalStorage } from "../../lib/storage/local-storage";
import { UrlSigner } from "../../lib/storage/signed-url";
import { HttpClient, memberCredentials, signUpMember } from "../support/http-client";
import type { SignedUpMember } from "../support/http-client";
import { startNode, stopNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { signIn } from "../support/sockets";

const admin = { meta: { user: { id: "operator", role: "admin", username: "operator" } } };
const key = randomBytes(32);
let root: string;
let env: Record<string, string>;
let node: RunningNode;
let member: SignedUpMember;

interface BackupNow {
  backups: { database: string; id: string; error?: string }[];
  drills: DrillResult[];
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-backups-embedded-"));
  env = { SHOAL_DATA_DIR: path.join(root, "data"), BACKUP_DIR: path.join(root, "backups"), BACKUP_ENCRYPTION_KEY: key.toString("base64") };
  node = await startNode(env);
  member = await signUpMember(node.baseUrl, null, { prefix: "bk" });
}, 60_000);

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

  it("after the data directory is lost, the restored databases bring the site back", async () => {
    await stopNode(node);
    fs.rmSync(env.SHOAL_DATA_DIR as string, { recursive: true, force: true });
    const settings = parseSettings(env);
    const storage = new LocalStorage(settings.backups.dir, new UrlSigner("unused-in-this-test"));
    const lines: string[] = [];
    for (const database of ["membership", "media", "site"] as const) {
      await runRestore(
        { database, point: { kind: "newest" }, target: { kind: "sqlite", file: path.join(settings.dataDir, `${database}.sqlite`) }, force: false },
        { storage, key, print: (line) => lines.push(line) },
      );
    }
    expect(lines.filter((line) => line.startsWith("checked "))).toHaveLength(3);
    node = await startNode(env);
    expect(await signIn(node.baseUrl, member.username, member.password)).toEqual(expect.any(String));
  }, 120_000);
});

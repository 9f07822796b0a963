/**
 * Point-in-time recovery on real MariaDB, Redis, NATS and S3 with a running cluster node: the backup
 * service archives the primary's binary log under the primary's name, a full backup of media, 1,000 writes
 * through the API, DROP DATABASE shoal_media, and `npm run restore --at` the moment before the drop brings
 * every table back row for row into a new database. A drill over an archive missing a span fails with why.
 */
import { withAccount } from "../../lib/backups/dump-sources";
import type { DrillResult } from "../../lib/backups/drill";
import { BINLOG_ARCHIVE_ROOT } from "../../lib/backups/binlog-archive-index";
import { applyBinlogRetention, formatArchiveStatus } from "../../lib/backups/cluster-point-in-time";
import { parseBackupKey } from "../../lib/backups/encryption";
import { DATABASE_NAMES } from "../../config/settings";
import { parseGtidState } from "../../lib/backups/binlog-events";
import { S3Storage } from "../../lib/storage/s3-storage";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { signUpMember } from "../support/http-client";
import type { SignedUpMember } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { contentsOf, readyItem, restoreCommand } from "../support/point-in-time";

const PUBLIC_URL = "http://shoal.test";

let services: TestServices;
let node: RunningNode;
let env: Record<string, string>;
let member: SignedUpMember;
let storage: S3Storage;

interface BackupNow {
  backups: { database: string; id: string; error?: string }[];
  drills: DrillResult[];
}

interface ArchiveDetail {
  server: string;
  runsHere: boolean;
  archive?: string;
  state?: string;
  lastUploadAt?: string | null;
  lastGtid?: string;
  gaps?: number;
}

function adminUrl(database = ""): string {
  const mariadb = services.mariadb!;
  const url = withAccount(mariadb.primaryUrl, { user: mariadb.adminUser, password: mariadb.adminPassword });
  return database === "" ? url : `${url.replace(/\/$/, "")}/${database}`;
}

async function primaryPosition(): Promise<bigint> {
  const [row] = await services.mariadb!.primary.query<{ position: string }>("SELECT @@gtid_binlog_pos AS position");
  return parseGtidState(row?.position ?? "").get(0)?.seq ?? 0n;
}

async function backupsCheck(): Promise<{ status: string; problems?: string[]; binlogArchive?: ArchiveDetail[] }> {
  const report = await node.runtime.health.run();
  return report.checks.backups as never;
}

/** Waits until the archive holds every transaction the primary has committed; answers how long that took. */
async function archivedNow(): Promise<number> {
  const committed = Date.now();
  const position = await primaryPosition();
  await eventually(
    async () => (await backupsCheck()).binlogArchive?.[0]?.lastGtid ?? "",
    (gtid) => (parseGtidState(gtid).get(0)?.seq ?? 0n) >= position,
    60_000,
  );
  return Date.now() - committed;
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1, templateDir: process.env.SHOAL_TEST_MARIADB_TEMPLATE }, redis: true, nats: true, s3: true });
  const mariadb = services.mariadb!;
  env = {
    ...envFor(services),
    MYSQL_ADMIN_USER: mariadb.adminUser,
    MYSQL_ADMIN_PASSWORD: mariadb.adminPassword,
    BACKUP_BINLOG_FLUSH_SECONDS: "1",
    SERVICES: "api,users,media,site,backup",
    SHOAL_PUBLIC_URL: PUBLIC_URL,
    RATE_REGISTRATIONS_PER_IP_PER_HOUR: "10000",
    RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000",
  };
  node = await startNode({ ...env, NODE_ID: "pitr" });
  storage = new S3Storage({ ...services.s3!, unsignedPayload: false });
  member = await signUpMember(node.baseUrl, PUBLIC_URL, { prefix: "pitr" });
}, 180_000);

afterAll(async () => {
  await stopAllNodes();
  await storage?.close();
  await services?.stop();
}, 60_000);

test("the backup service archives the primary's binary log under the primary's name, and says so in health", async () => {
  const check = await eventually(backupsCheck, (answer) => answer.binlogArchive?.[0]?.state === "streaming", 60_000);
  const port = services.mariadb!.primary.port;
  expect(check.binlogArchive).toEqual([expect.objectContaining({ server: `127.0.0.1:${port}`, runsHere: true, gaps: 0 })]);
  const [row] = await services.mariadb!.primary.query<{ id: number }>("SELECT @@server_id AS id");
  expect(check.binlogArchive?.[0]?.archive).toBe(`${BINLOG_ARCHIVE_ROOT}127.0.0.1-${port}-server-${row!.id}/`);
  await archivedNow();
  // What the REPL's `backups` prints after the catalogue.
  const repl = formatArchiveStatus(await node.broker.call<{ problems: string[]; detail: unknown }, object>("backup.archiveStatus", {}));
  expect(repl).toEqual([expect.stringMatching(new RegExp(`^binlog archive of 127\\.0\\.0\\.1:${port} \\(backups/binlog/.+\\): streaming here, last upload .+, last GTID 0-\\d+-\\d+$`))]);
  // The archive's index is written just after the file it lists: the binary log and its index.
  const listed = await eventually(
    () => storage.list(BINLOG_ARCHIVE_ROOT),
    (objects) => objects.length > 1 && objects.some((object) => object.key.endsWith("/index.json.enc")),
  );
  const objects = listed.map((object) => object.key);
  expect(objects.length).toBeGreaterThan(1);
  expect(objects.every((key) => key.startsWith(check.binlogArchive![0]!.archive!))).toBe(true);
}, 120_000);

test("full backup, 1,000 writes through the API, DROP DATABASE: restored --at the moment before (and --gtid the position before), every table is row-for-row as it was", async () => {
  const items = await Promise.all(Array.from({ length: 10 }, () => readyItem(node, member)));
  const done = await node.broker.call<BackupNow, object>("backup.backupNow", { database: "media" });
  expect(done.backups.map((backup) => [backup.database, backup.error])).toEqual([["media", undefined]]);
  expect(done.drills.map((drill) => [drill.database, drill.outcome, drill.reason])).toEqual([["media", "passed", null]]);

  // 1,000 writes through the API, eight at a time.
  const csrf = await member.client.csrfToken();
  let next = 0;
  const writer = async (): Promise<void> => {
    while (next < 1000) {
      const index = next++;
      const id = items[index % items.length]!;
      const answer = await member.client.request("PATCH", `/api/media/${id}`, { json: { title: `write ${index}`, description: `#${index}` }, csrf });
      expect(answer.status).toBe(200);
    }
  };
  await Promise.all(Array.from({ length: 8 }, writer));
  const rpoMs = await archivedNow();
  console.info(`point-in-time recovery RPO: the last of 1,000 writes was archived ${rpoMs} ms after it was committed (BACKUP_BINLOG_FLUSH_SECONDS=1; goal 60 s)`);

  // The state just before the drop, which goes into the next second: the restore stops before that second.
  const before = await contentsOf(adminUrl(), "shoal_media");
  const [{ position: positionBefore }] = (await services.mariadb!.primary.query<{ position: string }>("SELECT @@gtid_binlog_pos AS position")) as [{ position: string }];
  expect(before.media?.filter((row) => String((row as { title: string }).title).startsWith("write "))).toHaveLength(items.length);
  const moment = new Date(Math.ceil((Date.now() + 1) / 1000) * 1000);
  await new Promise((resolve) => setTimeout(resolve, moment.getTime() - Date.now() + 50));
  expect(await contentsOf(adminUrl(), "shoal_media")).toEqual(before);
  await services.mariadb!.primary.query("DROP DATABASE shoal_media");
  await archivedNow();

  const restored = await restoreCommand(env, ["--database", "media", "--at", moment.toISOString(), "--target", adminUrl("shoal_media_pitr")]);
  expect(restored).toEqual({ code: 0, output: expect.stringContaining("brought forward to GTID") });
  expect(restored.output).toMatch(/restored media in \d+\.\d s/);
  const after = await contentsOf(adminUrl(), "shoal_media_pitr");
  expect(Object.keys(after)).toEqual(Object.keys(before));
  for (const table of Object.keys(before)) expect({ table, rows: after[table] }).toEqual({ table, rows: before[table] });

  // To the GTID position read just before the drop: the same rows.
  const toGtid = await restoreCommand(env, ["--database", "media", "--gtid", positionBefore, "--target", adminUrl("shoal_media_gtid")]);
  expect(toGtid).toEqual({ code: 0, output: expect.stringContaining(`brought forward to GTID ${positionBefore}`) });
  expect(await contentsOf(adminUrl(), "shoal_media_gtid")).toEqual(before);

  // The restored copy now holds tables: the same restore without --force is refused, and changes nothing.
  const again = await restoreCommand(env, ["--database", "media", "--at", moment.toISOString(), "--target", adminUrl("shoal_media_pitr")]);
  expect(again.code).toBe(3);
  expect(again.output).toContain("pass --force");
  expect(await contentsOf(adminUrl(), "shoal_media_pitr")).toEqual(after);
}, 600_000);

test("a point the archive does not reach yet is refused before the target is touched", async () => {
  const future = new Date(Date.now() + 3600_000).toISOString();
  const refused = await restoreCommand(env, ["--database", "media", "--at", future, "--target", adminUrl("shoal_media_future")]);
  expect(refused.code).toBe(3);
  expect(refused.output).toContain("missing binlog span");
  const [row] = await services.mariadb!.primary.query<{ n: number }>("SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = 'shoal_media_future'");
  expect(Number(row!.n)).toBe(0);
}, 120_000);

test("a drill over an archive missing a span fails, and says so", async () => {
  // A site database write after the newest backup, in a binary log that is then closed and lost from the archive.
  const done = await node.broker.call<BackupNow, object>("backup.backupNow", { database: "site" });
  expect(done.drills.map((drill) => drill.outcome)).toEqual(["passed"]);
  await services.mariadb!.primary.query("FLUSH BINARY LOGS");
  await node.broker.call("site.recordAudit", { action: "test.write", actorId: null, subjectId: null, ip: null, detail: {} });
  await services.mariadb!.primary.query("FLUSH BINARY LOGS");
  await node.broker.call("site.recordAudit", { action: "test.write", actorId: null, subjectId: null, ip: null, detail: {} });
  await archivedNow();
  const archive = (await backupsCheck()).binlogArchive![0]!.archive!;
  const files = (await storage.list(archive)).map((object) => object.key).filter((key) => /\.\d{6,}$/.test(key)).sort();
  // The file before the newest: closed, so the archiver does not upload it again.
  await storage.delete(files[files.length - 2]!);

  const drills = await node.broker.call<DrillResult[], object>("backup.drillNow", { database: "site" });
  expect(drills).toEqual([expect.objectContaining({ database: "site", outcome: "failed", reason: expect.stringContaining("missing binlog span") })]);
  const check = await backupsCheck();
  expect(check.status).toBe("degraded");
  expect(check.problems?.join(" ")).toContain("missing binlog span");
}, 300_000);

test("binlog retention deletes the archived files no kept backup needs, and a drill still replays from the oldest kept one", async () => {
  await services.mariadb!.primary.query("FLUSH BINARY LOGS");
  // shoal_media was dropped above: the two other databases.
  const done = [
    ...(await node.broker.call<BackupNow, object>("backup.backupNow", { database: "membership" })).backups,
    ...(await node.broker.call<BackupNow, object>("backup.backupNow", { database: "site" })).backups,
  ];
  expect(done.map((backup) => backup.error)).toEqual([undefined, undefined]);
  const newIds = new Set(done.map((backup) => backup.id));
  // As if retention of full backups had kept only these two.
  for (const object of await storage.list("backups/")) {
    const match = /^backups\/(membership|media|site)\/([0-9A-Z]{26})\./.exec(object.key);
    if (match && !newIds.has(match[2]!)) await storage.delete(object.key);
  }
  await archivedNow();
  const archive = (await backupsCheck()).binlogArchive![0]!.archive!;
  const archived = async () => (await storage.list(archive)).map((object) => object.key.slice(archive.length)).filter((name) => /\.\d{6,}$/.test(name)).sort();
  const before = await archived();
  const deleted = await applyBinlogRetention(storage, parseBackupKey(env.BACKUP_ENCRYPTION_KEY!), DATABASE_NAMES);
  const after = await archived();
  expect(deleted).toBe(before.length - after.length);
  expect(deleted).toBeGreaterThan(0);
  // The files from the FLUSH on, which hold the new backups' positions, are kept.
  expect(after).toEqual(before.slice(before.length - after.length));
  const drills = await node.broker.call<DrillResult[], object>("backup.drillNow", { database: "membership" });
  expect(drills.map((drill) => [drill.outcome, drill.reason])).toEqual([["passed", null]]);
}, 300_000);

/**
 * Point-in-time recovery across a failover, on real MariaDB (a primary and a replica), Redis, NATS and S3:
 * a full backup of media and writes on the primary, the primary SIGKILLed and its replica promoted (as
 * `npm run db:promote` does), more writes through the API on the new primary. The archiver switches to the
 * promoted primary and continues the archive there; `npm run restore --at` (and `--gtid`) a point after the
 * promotion replays the old primary's archive up to where the new one's starts, then the new one's, and the
 * copy is row-for-row the state at that point. A node started afterwards, with MYSQL_PRIMARY_URL still naming the
 * old primary, archives the promoted one.
 */
import { withAccount } from "../../lib/backups/dump-sources";
import { BINLOG_ARCHIVE_ROOT } from "../../lib/backups/binlog-archive-index";
import { formatArchiveStatus } from "../../lib/backups/cluster-point-in-time";
import { parseGtidState } from "../../lib/backups/binlog-events";
import { promoteAndAnnounce } from "../../scripts/db-promote";
import { envFor, startServices } from "../../scripts/services";
import type { MariaDbServer, TestServices } from "../../scripts/services";
import { signUpMember } from "../support/http-client";
import type { SignedUpMember } from "../support/http-client";
import { eventually, startNode, stopAllNodes, stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { contentsOf, readyItem, restoreCommand } from "../support/point-in-time";

const PUBLIC_URL = "http://shoal.test";

let services: TestServices;
let node: RunningNode;
let env: Record<string, string>;
let member: SignedUpMember;

interface ArchiveDetail {
  server: string;
  runsHere: boolean;
  archive?: string;
  state?: string;
  lastGtid?: string;
  gaps?: number;
}

function adminUrl(server: MariaDbServer, database = ""): string {
  const mariadb = services.mariadb!;
  const url = withAccount(`mysql://x:y@127.0.0.1:${server.port}/`, { user: mariadb.adminUser, password: mariadb.adminPassword });
  return database === "" ? url : `${url.replace(/\/$/, "")}/${database}`;
}

async function position(server: MariaDbServer): Promise<string> {
  const [row] = await server.query<{ position: string }>("SELECT @@gtid_binlog_pos AS position");
  return row?.position ?? "";
}

async function archiveDetail(): Promise<ArchiveDetail> {
  const report = await node.runtime.health.run();
  return ((report.checks.backups as { binlogArchive?: ArchiveDetail[] }).binlogArchive ?? [])[0] ?? ({} as ArchiveDetail);
}

/** Waits until the archive of `server` streams and holds every transaction it has committed. */
async function archivedNow(server: MariaDbServer): Promise<ArchiveDetail> {
  const committed = parseGtidState(await position(server)).get(0)?.seq ?? 0n;
  return eventually(
    archiveDetail,
    (detail) => detail.server === `127.0.0.1:${server.port}` && detail.state === "streaming" && (parseGtidState(detail.lastGtid ?? "").get(0)?.seq ?? 0n) >= committed,
    60_000,
  );
}

/** `count` title changes through the API, four at a time, numbered from `first`. */
async function writes(items: readonly string[], first: number, count: number): Promise<void> {
  const csrf = await member.client.csrfToken();
  let next = first;
  const writer = async (): Promise<void> => {
    while (next < first + count) {
      const index = next++;
      const answer = await member.client.request("PATCH", `/api/media/${items[index % items.length]!}`, { json: { title: `write ${index}` }, csrf });
      expect(answer.status).toBe(200);
    }
  };
  await Promise.all(Array.from({ length: 4 }, writer));
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1, templateDir: process.env.SHOAL_TEST_MARIADB_TEMPLATE }, redis: true, nats: true, s3: true });
  const mariadb = services.mariadb!;
  env = {
    ...envFor(services),
    MYSQL_ADMIN_USER: mariadb.adminUser,
    MYSQL_ADMIN_PASSWORD: mariadb.adminPassword,
    BACKUP_BINLOG_FLUSH_SECONDS: "1",
    BACKUP_DRILL_SCHEDULE: "0 0 1 1 *",
    DB_PROBE_INTERVAL_MS: "250",
    SERVICES: "api,users,media,site,backup",
    SHOAL_PUBLIC_URL: PUBLIC_URL,
    RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000",
  };
  node = await startNode({ ...env, NODE_ID: "pitr-promotion" });
  member = await signUpMember(node.baseUrl, PUBLIC_URL, { prefix: "pitrp" });
}, 120_000);

afterAll(async () => {
  await stopAllNodes();
  await services?.stop();
}, 60_000);

test("after a failover the archiver archives the promoted primary, and a restore to a point after the promotion replays both archives", async () => {
  const mariadb = services.mariadb!;
  const [oldPrimary, replica] = [mariadb.primary, mariadb.replicas[0]!];
  const oldArchive = (await archivedNow(oldPrimary)).archive;
  const items = await Promise.all(Array.from({ length: 5 }, () => readyItem(node, member)));
  const done = await node.broker.call<{ backups: { database: string; error?: string }[] }, object>("backup.backupNow", { database: "media" });
  expect(done.backups.map((backup) => [backup.database, backup.error])).toEqual([["media", undefined]]);
  await writes(items, 0, 60);
  // The replica starts a new binary log: the promoted primary's archive starts with it, after the backup.
  await mariadb.waitForReplicaCatchUp(0);
  await replica.query("FLUSH BINARY LOGS");
  await writes(items, 60, 40);
  await mariadb.waitForReplicaCatchUp(0);
  await archivedNow(oldPrimary);

  await oldPrimary.kill();
  const outcome = await promoteAndAnnounce(node.settings, node.broker, { database: "media", force: false });
  expect(outcome.primary).toBe(`127.0.0.1:${replica.port}`);
  await eventually(
    () => node.broker.call<{ health: { primary: { server: string; reachable: boolean } } }, object>("media.replicationStatus", {}),
    ({ health }) => health.primary.server === outcome.primary && health.primary.reachable,
    30_000,
  );
  await writes(items, 100, 60);

  // The archiver follows the promotion: the new primary's archive, continuing the old one's without a gap.
  const detail = await archivedNow(replica);
  const [{ id: newServerId }] = (await replica.query<{ id: number }>("SELECT @@server_id AS id")) as [{ id: number }];
  expect(detail).toMatchObject({ server: outcome.primary, runsHere: true, gaps: 0, archive: `${BINLOG_ARCHIVE_ROOT}127.0.0.1-${replica.port}-server-${newServerId}/` });
  expect(detail.archive).not.toBe(oldArchive);
  const repl = formatArchiveStatus(await node.broker.call<{ problems: string[]; detail: unknown }, object>("backup.archiveStatus", {}));
  expect(repl).toEqual([expect.stringMatching(new RegExp(`^binlog archive of 127\\.0\\.0\\.1:${replica.port} \\(${detail.archive!}\\): streaming here, `))]);

  // The state at a moment after the promotion, then writes after it.
  const before = await contentsOf(adminUrl(replica), "shoal_media");
  const positionBefore = await position(replica);
  expect(before.media?.filter((row) => (row as { title: string }).title === "write 159")).toHaveLength(1);
  const moment = new Date(Math.ceil((Date.now() + 1) / 1000) * 1000);
  await new Promise((resolve) => setTimeout(resolve, moment.getTime() - Date.now() + 50));
  await writes(items, 160, 10);
  await archivedNow(replica);

  const restored = await restoreCommand(env, ["--database", "media", "--at", moment.toISOString(), "--target", adminUrl(replica, "shoal_media_pitr")]);
  expect(restored).toEqual({ code: 0, output: expect.stringContaining("brought forward to GTID") });
  // The old primary's archive up to where the new one's starts, then the new one's.
  expect(restored.output).toContain(`from ${oldArchive!}`);
  expect(restored.output).toContain(`, then ${detail.archive!}`);
  const after = await contentsOf(adminUrl(replica), "shoal_media_pitr");
  expect(Object.keys(after)).toEqual(Object.keys(before));
  for (const table of Object.keys(before)) expect({ table, rows: after[table] }).toEqual({ table, rows: before[table] });

  const toGtid = await restoreCommand(env, ["--database", "media", "--gtid", positionBefore, "--target", adminUrl(replica, "shoal_media_gtid")]);
  expect(toGtid).toEqual({ code: 0, output: expect.stringContaining(`brought forward to GTID ${positionBefore}`) });
  expect(await contentsOf(adminUrl(replica), "shoal_media_gtid")).toEqual(before);
}, 300_000);

test("a node started after the promotion, with MYSQL_PRIMARY_URL still naming the old primary, archives the promoted one", async () => {
  const replica = services.mariadb!.replicas[0]!;
  const archive = (await archiveDetail()).archive;
  await stopNode(node);
  node = await startNode({ ...env, NODE_ID: "pitr-promotion-restarted" });
  await replica.query("UPDATE shoal_media.media SET title = 'after the restart' WHERE owner_id = ?", [member.id]);
  const detail = await archivedNow(replica);
  expect(detail).toMatchObject({ server: `127.0.0.1:${replica.port}`, runsHere: true, gaps: 0, archive });
}, 120_000);

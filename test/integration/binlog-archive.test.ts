/**
 * The binlog archiver against a private MariaDB primary (with a replica): it archives committed
 * writes, reconnects after the primary restarts with no GTID gap, reports a real gap, and the archive
 * replays to a point in time.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BinlogArchiver } from "../../lib/backups/binlog-archiver";
import { BINLOG_MAGIC, emptyScan, parseGtidState, scanEvents } from "../../lib/backups/binlog-events";
import { encryptedArchiveSink, fetchArchivedBinlogs, listArchivedBinlogs } from "../../lib/backups/binlog-sinks";
import { mariadbBinlogPorts, replayBinlogs } from "../../lib/backups/binlog-tools";
import { LocalStorage } from "../../lib/storage/local-storage";
import { UrlSigner } from "../../lib/storage/signed-url";
import { startMariaDbReplicationSet } from "../../scripts/services";
import type { MariaDbReplicationSet } from "../../scripts/services";
import { eventually } from "../support/nodes";

let set: MariaDbReplicationSet;
let adminUrl: string;
let dir: string;
let storage: LocalStorage;
const PREFIX = "backups/binlog/primary/";
const key = randomBytes(32);
let fetches = 0;
let archiver: BinlogArchiver;
const logged: string[] = [];
const log = {
  info: () => undefined,
  warn: (message: string) => logged.push(`warn ${message}`),
  error: (message: string) => logged.push(`error ${message}`),
};

function newArchiver(): BinlogArchiver {
  return new BinlogArchiver(mariadbBinlogPorts({ url: adminUrl, serverId: 9001, sink: encryptedArchiveSink(storage, PREFIX, key) }), {
    directory: path.join(dir, "spool"),
    flushIntervalMs: 200,
    restartDelayMs: 200,
    maxRestartDelayMs: 1000,
    log,
  });
}

async function primaryPosition(): Promise<bigint> {
  const [row] = await set.primary.query<{ position: string }>("SELECT @@gtid_binlog_pos AS position");
  return parseGtidState(row?.position ?? "").get(0)?.seq ?? 0n;
}

function archivedSeq(): bigint {
  return parseGtidState(archiver.status().archivedGtid).get(0)?.seq ?? 0n;
}

/** Waits until the archive holds the primary's current position; answers how long that took. */
async function archivedNow(): Promise<number> {
  const committed = Date.now();
  const position = await primaryPosition();
  await eventually(async () => archivedSeq(), (seq) => seq >= position, 30_000);
  return Date.now() - committed;
}

/** The archived binary logs, decrypted into a directory of their own. */
async function archivedFiles(): Promise<string[]> {
  fetches += 1;
  return fetchArchivedBinlogs(storage, PREFIX, await listArchivedBinlogs(storage, PREFIX), key, path.join(dir, `fetched-${fetches}`));
}

/** The highest GTID sequence (domain 0) in the archived files themselves, read back from the archive. */
async function seqInArchive(): Promise<bigint> {
  let highest = 0n;
  for (const file of await archivedFiles()) {
    const scan = emptyScan();
    scanEvents(scan, fs.readFileSync(file));
    const seq = scan.lastGtids.get(0)?.seq ?? 0n;
    if (seq > highest) highest = seq;
  }
  return highest;
}

beforeAll(async () => {
  set = await startMariaDbReplicationSet({ replicas: 1 });
  adminUrl = `mysql://${set.adminUser}:${encodeURIComponent(set.adminPassword)}@127.0.0.1:${set.primary.port}`;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-binlog-archive-"));
  storage = new LocalStorage(path.join(dir, "objects"), new UrlSigner(randomBytes(32).toString("hex")));
  archiver = newArchiver();
  await archiver.start();
}, 120_000);

afterAll(async () => {
  await archiver?.stop();
  await set?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("a committed write reaches the archive (RPO measured)", async () => {
  await set.primary.query("CREATE DATABASE shoal_archived");
  await set.primary.query("CREATE TABLE shoal_archived.notes (id INT PRIMARY KEY, body VARCHAR(100))");
  await set.primary.query("INSERT INTO shoal_archived.notes VALUES (1, 'first')");
  const rpoMs = await archivedNow();
  console.info(`binlog archive RPO: ${rpoMs} ms from commit to archive (flush every 200 ms here)`);
  expect(await seqInArchive()).toBe(await primaryPosition());
  expect(archiver.status()).toMatchObject({ state: "streaming", gaps: [] });
  // Stored encrypted: not a binary log without the key, and refused with another one.
  const [first] = await listArchivedBinlogs(storage, PREFIX);
  const stored = fs.readFileSync(storage.filePath(`${PREFIX}${first}`));
  expect(stored.subarray(0, BINLOG_MAGIC.length).equals(BINLOG_MAGIC)).toBe(false);
  await expect(fetchArchivedBinlogs(storage, PREFIX, [first!], randomBytes(32), path.join(dir, "wrong-key"))).rejects.toThrow();
});

test("the primary restarts: the archiver reconnects and the archive goes on with no GTID gap", async () => {
  await set.primary.query("INSERT INTO shoal_archived.notes VALUES (2, 'before the restart')");
  await archivedNow();
  const restartsBefore = archiver.status().restarts;
  const filesBefore = (await listArchivedBinlogs(storage, PREFIX)).length;
  await set.primary.stop();
  await eventually(async () => archiver.status().state, (state) => state !== "streaming", 30_000);
  await set.primary.start();
  await set.primary.query("INSERT INTO shoal_archived.notes VALUES (3, 'after the restart')");
  await archivedNow();
  const status = archiver.status();
  expect(status.restarts).toBeGreaterThan(restartsBefore);
  expect(status.gaps).toEqual([]);
  expect(status.state).toBe("streaming");
  // The restart began a new binary log; the archive has it, and every GTID up to the primary's.
  expect((await listArchivedBinlogs(storage, PREFIX)).length).toBeGreaterThan(filesBefore);
  expect(await seqInArchive()).toBe(await primaryPosition());
  expect(logged.filter((line) => line.startsWith("error"))).toEqual([]);
}, 120_000);

test("replayed to a point in time, the archive reproduces the rows of that moment; to a GTID, up to that transaction", async () => {
  const start = await set.primary.query<{ position: string }>("SELECT @@gtid_binlog_pos AS position");
  const fromGtid = start[0]!.position;
  await set.primary.query("CREATE DATABASE shoal_pitr");
  await set.primary.query("CREATE TABLE shoal_pitr.items (id INT PRIMARY KEY)");
  await set.primary.query("INSERT INTO shoal_pitr.items VALUES (1), (2)");
  // The stop time is to the second: the next writes go in the next second.
  const moment = new Date(Math.ceil((Date.now() + 1) / 1000) * 1000);
  await new Promise((resolve) => setTimeout(resolve, moment.getTime() - Date.now() + 100));
  await set.primary.query("INSERT INTO shoal_pitr.items VALUES (3)");
  const third = await set.primary.query<{ position: string }>("SELECT @@gtid_binlog_pos AS position");
  await set.primary.query("INSERT INTO shoal_pitr.items VALUES (4)");
  await archivedNow();

  const rows = async () => (await set.primary.query<{ id: number }>("SELECT id FROM shoal_pitr.items ORDER BY id")).map((row) => row.id);
  // The primary has its own binary log in strict GTID mode: apply without logging.
  const files = await archivedFiles();
  const replay = (until: { time: Date } | { gtid: string }) => replayBinlogs({ files, target: adminUrl, fromGtid, until, skipTargetBinlog: true });

  await set.primary.query("DROP DATABASE shoal_pitr");
  const applied = await replay({ time: moment });
  expect(applied.sqlBytes).toBeGreaterThan(0);
  expect(await rows()).toEqual([1, 2]);

  await set.primary.query("DROP DATABASE shoal_pitr");
  await replay({ gtid: third[0]!.position });
  expect(await rows()).toEqual([1, 2, 3]);
}, 60_000);

test("binlogs purged before they were archived: the archiver reports the GTID gap as an error", async () => {
  await archiver.stop();
  const lastArchived = archivedSeq();
  await set.primary.query("INSERT INTO shoal_archived.notes VALUES (10, 'never archived')");
  await set.primary.query("FLUSH BINARY LOGS");
  await set.waitForReplicaCatchUp(0);
  const logs = await set.primary.query<{ Log_name: string }>("SHOW BINARY LOGS");
  const newest = logs[logs.length - 1]!.Log_name;
  // The server keeps a file that a reader (a replica, the stopped stream's session) is still on: purge until it is gone.
  await eventually(
    async () => {
      await set.primary.query(`PURGE BINARY LOGS TO '${newest}'`);
      return set.primary.query<{ Log_name: string }>("SHOW BINARY LOGS");
    },
    (left) => left.length === 1,
    20_000,
  );

  archiver = newArchiver();
  await archiver.start();
  await set.primary.query("INSERT INTO shoal_archived.notes VALUES (11, 'after the purge')");
  await eventually(async () => archiver.status().gaps, (gaps) => gaps.length > 0, 30_000);
  expect(archiver.status().gaps).toEqual([
    expect.objectContaining({ domain: 0, missingFrom: String(lastArchived + 1n), missingTo: String(lastArchived + 1n), file: newest }),
  ]);
  expect(logged.some((line) => line.startsWith("error") && line.includes("GTID gap"))).toBe(true);
}, 60_000);

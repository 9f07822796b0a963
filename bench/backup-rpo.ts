/**
 * The RPO round of bench/backup.ts: Shoal's binlog archiver (lib/backups/binlog-archiver.ts, with
 * mariadb-binlog --read-from-remote-server --raw --stop-never and the encrypted S3 sink) runs against the
 * primary while a writer changes media rows at a steady rate. Each write's GTID is read on its own
 * connection (@@last_gtid) as it commits. At every sample, the archive's newest GTID (the archiver's status,
 * updated once an upload has finished) names the newest archived write; the sample is that write's age, the
 * data a primary lost at that moment would take with it. At the end the newest archived file is read back
 * from S3, decrypted and scanned, to check that the last write is really there.
 */
import fs from "node:fs";
import path from "node:path";
import mysql from "mysql2/promise";
import type { RowDataPacket } from "mysql2/promise";
import { BinlogArchiver } from "../lib/backups/binlog-archiver";
import { emptyScan, parseGtidState, scanEvents } from "../lib/backups/binlog-events";
import { encryptedArchiveSink, fetchArchivedBinlogs, listArchivedBinlogs } from "../lib/backups/binlog-sinks";
import { mariadbBinlogPorts } from "../lib/backups/binlog-tools";
import { percentile } from "../lib/stats/metrics";
import type { ObjectStorage } from "../lib/storage/object-storage";
import { delay, median, progress, round } from "./harness/common";
import { cpuMark, loadSince } from "./harness/machine";

export interface RpoOptions {
  /** An account with REPLICATION SLAVE on the primary (the archiver's stream). */
  readonly adminUrl: string;
  /** The application's account (the writer). */
  readonly appUrl: string;
  readonly storage: ObjectStorage;
  readonly key: Buffer;
  readonly directory: string;
  readonly flushSeconds: number;
  readonly writesPerSecond: number;
  readonly seconds: number;
  readonly sampleMs: number;
}

interface Write {
  readonly seq: bigint;
  readonly at: number;
}

const PREFIX = "backups/binlog/bench/";
const SERVER_ID = 9101;

const seqOf = (gtid: string): bigint => parseGtidState(gtid).get(0)?.seq ?? 0n;

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await delay(200);
  }
  return Date.now() - started;
}

/** The highest GTID sequence (domain 0) in the newest archived file, read back from storage. */
async function newestSeqInArchive(storage: ObjectStorage, key: Buffer, directory: string): Promise<{ file: string; seq: bigint }> {
  const names = await listArchivedBinlogs(storage, PREFIX);
  const newest = names[names.length - 1];
  if (newest === undefined) throw new Error("nothing was archived");
  const [file] = await fetchArchivedBinlogs(storage, PREFIX, [newest], key, path.join(directory, "read-back"));
  const scan = emptyScan();
  scanEvents(scan, fs.readFileSync(file as string));
  return { file: newest, seq: scan.lastGtids.get(0)?.seq ?? 0n };
}

export async function measureRpo(options: RpoOptions) {
  const logged = { warnings: [] as string[], errors: [] as string[] };
  const archiver = new BinlogArchiver(mariadbBinlogPorts({ url: options.adminUrl, serverId: SERVER_ID, sink: encryptedArchiveSink(options.storage, PREFIX, options.key) }), {
    directory: path.join(options.directory, "spool"),
    flushIntervalMs: options.flushSeconds * 1000,
    log: { info: () => undefined, warn: (message) => logged.warnings.push(message), error: (message) => logged.errors.push(message) },
  });
  const writer = await mysql.createConnection({ uri: `${options.appUrl.replace(/\/$/, "")}/shoal_media` });
  const archivedSeq = () => seqOf(archiver.status().archivedGtid);
  try {
    const [ids] = await writer.query<RowDataPacket[]>("SELECT id FROM media ORDER BY id LIMIT 1000");
    const mediaIds = ids.map((row) => String(row.id));
    const [position] = await writer.query<RowDataPacket[]>("SELECT @@gtid_binlog_pos AS position");
    const startSeq = seqOf(String(position[0]?.position ?? ""));

    progress("rpo", `starting the binlog archiver (flush every ${options.flushSeconds} s); it first archives the binary logs so far (GTID sequence ${startSeq})`);
    const catchUpStarted = Date.now();
    await archiver.start();
    await waitFor(() => archivedSeq() >= startSeq, 600_000, "the archiver to archive the binary logs so far");
    const catchUpSeconds = round((Date.now() - catchUpStarted) / 1000, 1);
    progress("rpo", `archived up to the present in ${catchUpSeconds} s; ${options.writesPerSecond} writes/s for ${options.seconds} s, sampled every ${options.sampleMs} ms`);

    const writes: Write[] = [];
    const samples: number[] = [];
    const intervalMs = 1000 / options.writesPerSecond;
    const total = Math.round(options.seconds * options.writesPerSecond);
    const mark = cpuMark();
    const started = Date.now();
    let lateMs = 0;
    const sampler = setInterval(() => {
      if (writes.length === 0) return;
      const archived = archivedSeq();
      let newest: Write | undefined;
      for (let index = writes.length - 1; index >= 0; index -= 1) {
        const write = writes[index] as Write;
        if (write.seq <= archived) {
          newest = write;
          break;
        }
      }
      // Nothing of this round archived yet: everything since its first write would be lost.
      samples.push(Date.now() - (newest ?? (writes[0] as Write)).at);
    }, options.sampleMs);
    try {
      for (let n = 0; n < total; n += 1) {
        const due = started + n * intervalMs;
        const wait = due - Date.now();
        if (wait > 0) await delay(wait);
        else lateMs = Math.max(lateMs, -wait);
        const id = mediaIds[n % mediaIds.length] as string;
        const at = Date.now();
        await writer.query("UPDATE media SET title = ?, updated_at = ? WHERE id = ?", [`Edited ${n}`, at, id]);
        const [rows] = await writer.query<RowDataPacket[]>("SELECT @@last_gtid AS gtid");
        writes.push({ seq: seqOf(String(rows[0]?.gtid ?? "")), at: Date.now() });
      }
    } finally {
      clearInterval(sampler);
    }
    const writeSeconds = (Date.now() - started) / 1000;
    const load = loadSince(mark);
    const last = writes[writes.length - 1] as Write;
    const lastArchivedAfterMs = await waitFor(() => archivedSeq() >= last.seq, (options.flushSeconds + 120) * 1000, "the last write to be archived");
    const readBack = await newestSeqInArchive(options.storage, options.key, options.directory);
    if (readBack.seq < last.seq) throw new Error(`the archive's newest file ${readBack.file} ends at sequence ${readBack.seq}, before the last write's ${last.seq}`);
    const status = archiver.status();
    return {
      archiver: {
        tool: "mariadb-binlog --read-from-remote-server --raw --stop-never (lib/backups/binlog-tools.ts mariadbBinlogPorts), encrypted to S3 (encryptedArchiveSink)",
        flushSeconds: options.flushSeconds,
        catchUpSeconds,
        restarts: status.restarts,
        gaps: status.gaps.length,
        files: (await listArchivedBinlogs(options.storage, PREFIX)).length,
        warnings: logged.warnings,
        errors: logged.errors,
      },
      writes: {
        what: "UPDATE shoal_media.media SET title, updated_at (one row each, autocommit) on the primary, through the application's account",
        count: writes.length,
        perSecondAsked: options.writesPerSecond,
        perSecondReached: round(writes.length / writeSeconds, 1),
        mostLateMs: Math.round(lateMs),
      },
      rpoSeconds: {
        samples: samples.length,
        sampleMs: options.sampleMs,
        max: round(Math.max(...samples) / 1000, 1),
        p50: round(median(samples) / 1000, 1),
        p90: round((percentile(samples, 90) ?? 0) / 1000, 1),
      },
      lastWriteArchivedAfterSeconds: round(lastArchivedAfterMs / 1000, 1),
      readBack: { file: readBack.file, newestSeq: String(readBack.seq), lastWriteSeq: String(last.seq) },
      load,
    };
  } finally {
    await writer.end().catch(() => undefined);
    await archiver.stop();
  }
}

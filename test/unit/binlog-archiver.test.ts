/**
 * The binlog archiver through its ports: a fake primary whose "stream" writes binary log files into
 * the archiver's directory as mariadb-binlog would, and a sink that keeps what was uploaded.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { BinlogArchiver, compareBinlogNames } from "../../lib/backups/binlog-archiver";
import type { ArchiveIndex, BinlogArchiverPorts } from "../../lib/backups/binlog-archiver";
import { BINLOG_MAGIC, emptyScan, formatGtidState, gtidGaps, parseGtidState, scanEvents } from "../../lib/backups/binlog-events";
import { replayArguments } from "../../lib/backups/binlog-tools";

function event(type: number, body: Buffer, serverId = 1, time = 1_800_000_000): Buffer {
  const header = Buffer.alloc(19);
  header.writeUInt32LE(time, 0);
  header.writeUInt8(type, 4);
  header.writeUInt32LE(serverId, 5);
  header.writeUInt32LE(19 + body.length, 9);
  return Buffer.concat([header, body]);
}

const formatDescription = () => event(15, Buffer.alloc(40, 1));

function gtidList(entries: [domain: number, server: number, seq: number][]): Buffer {
  const body = Buffer.alloc(4 + entries.length * 16);
  body.writeUInt32LE(entries.length, 0);
  entries.forEach(([domain, server, seq], index) => {
    body.writeUInt32LE(domain, 4 + index * 16);
    body.writeUInt32LE(server, 8 + index * 16);
    body.writeBigUInt64LE(BigInt(seq), 12 + index * 16);
  });
  return event(163, body);
}

function gtid(seq: number, domain = 0, server = 1): Buffer {
  const body = Buffer.alloc(13);
  body.writeBigUInt64LE(BigInt(seq), 0);
  body.writeUInt32LE(domain, 8);
  return event(162, body, server);
}

const write = (text: string) => event(2, Buffer.from(text));

/** A binary log file as the server writes it: magic, format description, the GTID state it starts from, then transactions. */
function binlog(startSeq: number, transactions: number[]): Buffer {
  return Buffer.concat([BINLOG_MAGIC, formatDescription(), gtidList(startSeq > 0 ? [[0, 1, startSeq]] : []), ...transactions.flatMap((seq) => [gtid(seq), write(`insert ${seq}`)])]);
}

describe("binary log events", () => {
  it("finds the last complete event, the state a file starts from and its last GTIDs, across reads", () => {
    const bytes = binlog(5, [6, 7]);
    const scan = emptyScan();
    // Cut in the middle of the last event: that event waits for the rest.
    scanEvents(scan, bytes.subarray(0, bytes.length - 3));
    expect(scan.complete).toBe(bytes.length - write("insert 7").length);
    expect(formatGtidState(scan.startState!)).toBe("0-1-5");
    expect(formatGtidState(scan.lastGtids)).toBe("0-1-7");
    scanEvents(scan, bytes.subarray(scan.complete));
    expect(scan.complete).toBe(bytes.length);
    expect(scan.lastEventTime).toBe(1_800_000_000);
  });

  it("refuses what is not a binary log", () => {
    expect(() => scanEvents(emptyScan(), Buffer.from("SELECT 1; -- not a binlog"))).toThrow("not a binary log");
  });

  it("names the missing GTIDs when a file starts past what is archived, per domain", () => {
    expect(gtidGaps(parseGtidState("0-1-10,1-2-4"), parseGtidState("0-1-10,1-2-4"))).toEqual([]);
    expect(gtidGaps(parseGtidState("0-1-10"), parseGtidState("0-1-9"))).toEqual([]);
    expect(gtidGaps(parseGtidState("0-1-10,1-2-4"), parseGtidState("0-1-13,1-2-4,2-3-1"))).toEqual([
      { domain: 0, missingFrom: 11n, missingTo: 13n },
      { domain: 2, missingFrom: 1n, missingTo: 1n },
    ]);
    expect(() => parseGtidState("0-1")).toThrow('"0-1" is not a GTID');
  });

  it("orders binary log names by their number", () => {
    expect(["b.000010", "b.000009", "b.1000000"].sort(compareBinlogNames)).toEqual(["b.000009", "b.000010", "b.1000000"]);
  });
});

/** The primary's binary logs, and the streams the archiver opened on it. */
class FakePrimary {
  logs = ["bin.000001"];
  readonly streams: { firstFile: string; directory: string; end(why: string): void }[] = [];
  readonly uploads = new Map<string, Buffer>();
  readonly puts: string[] = [];
  index: ArchiveIndex | undefined;

  /** The GTID state each binary log starts from. */
  startStates: Record<string, string> = {};

  ports(): BinlogArchiverPorts {
    return {
      binaryLogs: async () => [...this.logs],
      startStateOf: async (file) => this.startStates[file] ?? "",
      startStream: (firstFile, directory) => {
        let end: (why: string) => void = () => undefined;
        const exited = new Promise<string>((resolve) => {
          end = resolve;
        });
        this.streams.push({ firstFile, directory, end });
        return { exited, stop: () => end("stopped") };
      },
      sink: {
        put: async (name: string, body: Readable) => {
          const chunks: Buffer[] = [];
          for await (const chunk of body) chunks.push(chunk as Buffer);
          this.uploads.set(name, Buffer.concat(chunks));
          this.puts.push(name);
        },
        putIndex: async (index: ArchiveIndex) => {
          this.index = index;
        },
      },
    };
  }

  /** What the stream has written so far of a file. */
  received(name: string, bytes: Buffer): void {
    const stream = this.streams[this.streams.length - 1]!;
    fs.writeFileSync(path.join(stream.directory, name), bytes);
  }
}

let dir: string;
let primary: FakePrimary;
let logged: string[];
const archivers: BinlogArchiver[] = [];

function archiver(continuesFrom?: string): BinlogArchiver {
  const made = new BinlogArchiver(primary.ports(), {
    ...(continuesFrom === undefined ? {} : { continuesFrom }),
    directory: dir,
    // Flushed by the test, not by the clock.
    flushIntervalMs: 3_600_000,
    restartDelayMs: 1,
    maxRestartDelayMs: 2,
    log: { info: () => undefined, warn: (message) => logged.push(`warn ${message}`), error: (message) => logged.push(`error ${message}`) },
  });
  archivers.push(made);
  return made;
}

async function streams(count: number): Promise<void> {
  for (let waited = 0; primary.streams.length < count; waited += 5) {
    if (waited > 5000) throw new Error(`only ${primary.streams.length} of ${count} streams were opened`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-binlog-unit-"));
  primary = new FakePrimary();
  logged = [];
});

afterEach(async () => {
  await Promise.all(archivers.splice(0).map((made) => made.stop()));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("BinlogArchiver", () => {
  it("uploads the growing file cut at its last complete event, then the rest once it arrives", async () => {
    const archive = archiver();
    await archive.start();
    await streams(1);
    expect(primary.streams[0]!.firstFile).toBe("bin.000001");
    const full = binlog(0, [1, 2]);
    primary.received("bin.000001", full.subarray(0, full.length - 4));
    await archive.flush();
    expect(primary.uploads.get("bin.000001")).toEqual(full.subarray(0, full.length - write("insert 2").length));
    expect(archive.status().archivedGtid).toBe("0-1-2");
    // Nothing new: no upload.
    await archive.flush();
    expect(primary.puts).toHaveLength(1);
    primary.received("bin.000001", full);
    await archive.flush();
    expect(primary.uploads.get("bin.000001")).toEqual(full);
    expect(archive.status()).toMatchObject({ state: "streaming", lastFile: "bin.000001", gaps: [], restarts: 0 });
  });

  it("publishes an index of what is archived: each file's starting GTID state, last GTID and last event time, and until when it is complete", async () => {
    const archive = archiver();
    await archive.start();
    await streams(1);
    primary.received("bin.000001", binlog(0, [1, 2]));
    // The primary has moved on to a file the stream has not brought yet: the archive is not known complete.
    primary.logs = ["bin.000001", "bin.000002"];
    await archive.flush();
    expect(primary.index).toMatchObject({ completeUntil: 0, files: [{ name: "bin.000001", lastGtid: "0-1-2" }] });
    primary.received("bin.000002", binlog(2, [3]));
    await archive.flush();
    expect(primary.index).toMatchObject({
      formatVersion: 1,
      archivedGtid: "0-1-3",
      gaps: [],
      files: [
        { name: "bin.000001", closed: true, startGtid: "", lastGtid: "0-1-2", lastEventAt: 1_800_000_000_000 },
        { name: "bin.000002", closed: false, startGtid: "0-1-2", lastGtid: "0-1-3", lastEventAt: 1_800_000_000_000 },
      ],
    });
    // Streaming the primary's newest file: complete up to a moment before the upload.
    expect(primary.index!.completeUntil).toBeGreaterThan(0);
    expect(primary.index!.completeUntil).toBeLessThanOrEqual(primary.index!.updatedAt);
  });

  it("after the stream drops, reconnects from the newest archived file; a next file that follows on is no gap", async () => {
    const archive = archiver();
    await archive.start();
    await streams(1);
    primary.received("bin.000001", binlog(0, [1, 2]));
    primary.streams[0]!.end("mariadb-binlog exited (code 1): Lost connection to server during query");
    await streams(2);
    expect(primary.streams[1]!.firstFile).toBe("bin.000001");
    expect(archive.status()).toMatchObject({ restarts: 1, lastError: expect.stringContaining("Lost connection") });
    // What arrived before the drop was uploaded at once.
    expect(primary.uploads.get("bin.000001")).toEqual(binlog(0, [1, 2]));
    // The restarted primary began a new file; the stream writes the old one again from its start, then the new one.
    primary.logs = ["bin.000001", "bin.000002"];
    primary.received("bin.000001", Buffer.concat([binlog(0, [1, 2]), write("stop")]));
    primary.received("bin.000002", binlog(2, [3]));
    await archive.flush();
    expect(archive.status()).toMatchObject({ gaps: [], archivedGtid: "0-1-3", lastFile: "bin.000002" });
    expect(primary.uploads.get("bin.000002")).toEqual(binlog(2, [3]));
    expect(logged.filter((line) => line.startsWith("error"))).toEqual([]);
  });

  it("reports a file that starts past the archive as a GTID gap (logged as an error, kept across restarts)", async () => {
    const first = archiver();
    await first.start();
    await streams(1);
    primary.received("bin.000001", binlog(0, [1, 2]));
    await first.stop();
    // Meanwhile the primary wrote 3 and 4 and expired bin.000001 before it was archived further.
    primary.logs = ["bin.000002"];
    const second = archiver();
    await second.start();
    await streams(2);
    expect(primary.streams[1]!.firstFile).toBe("bin.000002");
    primary.received("bin.000002", binlog(4, [5]));
    await second.flush();
    expect(second.status().gaps).toEqual([expect.objectContaining({ file: "bin.000002", domain: 0, missingFrom: "3", missingTo: "4" })]);
    expect(logged).toContainEqual(expect.stringMatching(/^error binlog archive: GTID gap before bin\.000002: domain 0 sequence 3 to 4 is missing/));
    // What follows is still archived.
    expect(second.status().archivedGtid).toBe("0-1-5");
    await second.stop();
    const third = archiver();
    await third.start();
    expect(third.status().gaps).toHaveLength(1);
  });

  it("a promoted primary's new archive starts with its newest binary log that begins within the earlier archive, and continues it without a gap", async () => {
    // The old primary's archive holds up to 0-1-20; the promoted replica's logs start at nothing, 15 and 25.
    primary.logs = ["bin.000001", "bin.000002", "bin.000003"];
    primary.startStates = { "bin.000001": "", "bin.000002": "0-1-15", "bin.000003": "0-1-25" };
    const archive = archiver("0-1-20");
    await archive.start();
    await streams(1);
    expect(primary.streams[0]!.firstFile).toBe("bin.000002");
    primary.received("bin.000002", binlog(15, [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]));
    primary.received("bin.000003", binlog(25, [26]));
    await archive.flush();
    expect(archive.status()).toMatchObject({ gaps: [], lastFile: "bin.000003", archivedGtid: "0-1-26" });
    expect([...primary.uploads.keys()]).toEqual(["bin.000002", "bin.000003"]);
    expect(logged.filter((line) => line.startsWith("error"))).toEqual([]);
  });

  it("a promoted primary whose binary logs start past the earlier archive reports the missing GTIDs as a gap", async () => {
    primary.logs = ["bin.000004"];
    primary.startStates = { "bin.000004": "0-1-30" };
    const archive = archiver("0-1-20");
    await archive.start();
    await streams(1);
    expect(primary.streams[0]!.firstFile).toBe("bin.000004");
    primary.received("bin.000004", binlog(30, [31]));
    await archive.flush();
    expect(archive.status().gaps).toEqual([expect.objectContaining({ file: "bin.000004", domain: 0, missingFrom: "21", missingTo: "30" })]);
    expect(logged).toContainEqual(expect.stringContaining("domain 0 sequence 21 to 30 is missing from the archive (neither the earlier primaries' archives nor this primary has it)"));
    expect(primary.index?.gaps).toHaveLength(1);
  });

  it("keeps locally only the open file and the newest closed one once they are archived", async () => {
    const archive = archiver();
    await archive.start();
    await streams(1);
    primary.received("bin.000001", binlog(0, [1]));
    await archive.flush();
    primary.received("bin.000002", binlog(1, [2]));
    await archive.flush();
    expect(fs.existsSync(path.join(dir, "bin.000001"))).toBe(true);
    primary.received("bin.000003", binlog(2, [3]));
    await archive.flush();
    expect(fs.readdirSync(dir).filter((name) => name.startsWith("bin.")).sort()).toEqual(["bin.000002", "bin.000003"]);
    expect([...primary.uploads.keys()].sort()).toEqual(["bin.000001", "bin.000002", "bin.000003"]);
    expect(archive.status()).toMatchObject({ gaps: [], archivedGtid: "0-1-3" });
  });

  it("keeps trying while the primary does not answer, and says why", async () => {
    let calls = 0;
    const ports = primary.ports();
    const archive = new BinlogArchiver(
      {
        ...ports,
        binaryLogs: async () => {
          calls += 1;
          throw new Error("connect ECONNREFUSED 127.0.0.1:3306");
        },
      },
      { directory: dir, flushIntervalMs: 3_600_000, restartDelayMs: 1, maxRestartDelayMs: 2, log: { info: () => undefined, warn: () => undefined, error: () => undefined } },
    );
    archivers.push(archive);
    await archive.start();
    for (let waited = 0; calls < 3 && waited < 5000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(archive.status()).toMatchObject({ lastError: "connect ECONNREFUSED 127.0.0.1:3306" });
    await archive.stop();
    expect(archive.status().state).toBe("stopped");
  });
});

describe("replayArguments", () => {
  it("stops at a moment (UTC, to the second) or after a GTID, from the dump's position", () => {
    expect(replayArguments({ files: ["a.000001", "a.000002"], target: "mysql://u:p@h:1", fromGtid: "0-1-10", until: { time: new Date("2026-05-01T12:34:56.789Z") } })).toEqual([
      "--start-position=0-1-10",
      "--stop-datetime=2026-05-01 12:34:56",
      "a.000001",
      "a.000002",
    ]);
    expect(
      replayArguments({ files: ["a.000001"], target: "mysql://u:p@h:1", until: { gtid: "0-1-12" }, database: "shoal_media", renameDatabase: { from: "shoal_media", to: "shoal_drill_media" }, skipTargetBinlog: true }),
    ).toEqual(["--stop-position=0-1-12", "--database=shoal_media", "--rewrite-db=shoal_media->shoal_drill_media", "--disable-log-bin", "a.000001"]);
  });

  it("refuses no files and an invalid stop time", () => {
    expect(() => replayArguments({ files: [], target: "mysql://u:p@h:1" })).toThrow("no binary log files to replay");
    expect(() => replayArguments({ files: ["a.000001"], target: "mysql://u:p@h:1", until: { time: new Date("not a date") } })).toThrow("not a valid date");
  });
});

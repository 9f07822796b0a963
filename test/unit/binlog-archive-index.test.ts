/**
 * Which archived binary logs a point-in-time restore replays, when the archive cannot bring a backup to the
 * point (a missing binlog span), and which archived files retention deletes.
 */
import { archivePrefix, binlogsToDelete, planChainedReplay, planReplay } from "../../lib/backups/binlog-archive-index";
import type { ArchiveIndex, ArchivedFile } from "../../lib/backups/binlog-archiver";
import { formatArchiveStatus } from "../../lib/backups/cluster-point-in-time";

const T0 = Date.UTC(2026, 11, 1, 10, 0, 0);

function file(name: string, start: number, last: number | undefined, lastEventAt: number, closed = true): ArchivedFile {
  return { name, bytes: 1000, closed, startGtid: start > 0 ? `0-1-${start}` : "", lastGtid: last === undefined ? "" : `0-1-${last}`, lastEventAt };
}

function index(files: ArchivedFile[], extra: Partial<ArchiveIndex> = {}): ArchiveIndex {
  return { formatVersion: 1, files, gaps: [], archivedGtid: "", completeUntil: 0, updatedAt: T0, ...extra };
}

// Three files: 1..10, 11..20, 21..30 (each starts where the previous ended), one minute apart.
const three = [file("bin.000001", 0, 10, T0), file("bin.000002", 10, 20, T0 + 60_000), file("bin.000003", 20, 30, T0 + 120_000, false)];

describe("planReplay", () => {
  it("replays from the file holding the backup's position to the one reaching the GTID asked for", () => {
    expect(planReplay(index(three), "0-1-15", { gtid: "0-1-25" })).toEqual({ ok: true, files: ["bin.000002", "bin.000003"], domains: [0] });
    expect(planReplay(index(three), "0-1-5", { gtid: "0-1-20" })).toEqual({ ok: true, files: ["bin.000001", "bin.000002"], domains: [0] });
  });

  it("replays up to the file whose events reach the moment asked for, or the whole archive when it was complete then", () => {
    expect(planReplay(index(three), "0-1-5", { time: new Date(T0 + 30_000) })).toEqual({ ok: true, files: ["bin.000001", "bin.000002"], domains: [0] });
    const quiet = new Date(T0 + 180_000);
    expect(planReplay(index(three), "0-1-5", { time: quiet })).toMatchObject({ ok: false, problem: expect.stringContaining("missing binlog span: the archive ends at 0-1-30") });
    expect(planReplay(index(three, { completeUntil: T0 + 200_000 }), "0-1-5", { time: quiet })).toMatchObject({ ok: true, files: three.map((f) => f.name) });
  });

  it("refuses a span the archive lacks: it starts after the backup, a file is missing, or it ends before the point", () => {
    expect(planReplay(index(three.slice(1)), "0-1-5", { gtid: "0-1-25" })).toEqual({
      ok: false,
      problem: "missing binlog span: the archive starts at 0-1-10, after the backup's position 0-1-5",
    });
    expect(planReplay(index([three[0]!, three[2]!]), "0-1-5", { gtid: "0-1-25" })).toEqual({
      ok: false,
      problem: "missing binlog span: domain 0 sequence 11 to 20 is not in the archive (between bin.000001 and bin.000003)",
    });
    expect(planReplay(index(three), "0-1-5", { gtid: "0-1-31" })).toMatchObject({ ok: false, problem: expect.stringContaining("the archive ends at 0-1-30") });
    expect(planReplay(index([]), "0-1-5", { gtid: "0-1-6" })).toEqual({ ok: false, problem: "missing binlog span: the archive holds no binary logs" });
  });

  it("refuses a span across a gap the archiver found, a GTID before the backup, and a backup without a position", () => {
    const gap = { file: "bin.000003", domain: 0, missingFrom: "21", missingTo: "22", detectedAt: T0 };
    expect(planReplay(index(three, { gaps: [gap] }), "0-1-5", { gtid: "0-1-25" })).toMatchObject({ ok: false, problem: expect.stringContaining("sequence 21 to 22 never reached") });
    // A gap after the GTID asked for does not matter.
    expect(planReplay(index(three, { gaps: [gap] }), "0-1-5", { gtid: "0-1-20" })).toMatchObject({ ok: true });
    expect(planReplay(index(three), "0-1-15", { gtid: "0-1-12" })).toMatchObject({ ok: false, problem: expect.stringContaining("before the backup's position") });
    expect(planReplay(index(three), "", { gtid: "0-1-12" })).toMatchObject({ ok: false, problem: expect.stringContaining("no GTID position") });
  });
});

describe("planChainedReplay (across promotions)", () => {
  // The old primary's archive holds 1..30; the promoted replica's starts at 25 (its logs from then on: 26..30 replicated, then its own 31..40).
  const old = { prefix: "backups/binlog/a-3306-server-1/", index: index(three) };
  const promoted = (start: number, prefix = "backups/binlog/b-3306-server-2/") => ({
    prefix,
    index: index([
      { name: "bin.000002", bytes: 1000, closed: true, startGtid: `0-1-${start}`, lastGtid: "0-2-35", lastEventAt: T0 + 300_000 },
      { name: "bin.000003", bytes: 1000, closed: false, startGtid: "0-2-35", lastGtid: "0-2-40", lastEventAt: T0 + 360_000 },
    ]),
  });

  it("replays the old primary's archive up to where the new one's starts, then the new one's", () => {
    expect(planChainedReplay([old, promoted(25)], "0-1-5", { gtid: "0-2-37" })).toEqual({
      ok: true,
      segments: [
        { prefix: old.prefix, files: ["bin.000001", "bin.000002", "bin.000003"], from: "0-1-5", until: { gtid: "0-1-25" } },
        { prefix: promoted(25).prefix, files: ["bin.000002", "bin.000003"], from: "0-1-25", until: { gtid: "0-2-37" } },
      ],
      domains: [0],
    });
    const moment = { time: new Date(T0 + 320_000) };
    expect(planChainedReplay([promoted(25), old], "0-1-5", moment)).toMatchObject({
      ok: true,
      segments: [{ prefix: old.prefix, until: { gtid: "0-1-25" } }, { prefix: promoted(25).prefix, files: ["bin.000002", "bin.000003"], until: moment }],
    });
  });

  it("uses one archive when it covers the span: a point before the promotion, or a backup taken after the new archive starts", () => {
    expect(planChainedReplay([old, promoted(25)], "0-1-5", { gtid: "0-1-28" })).toMatchObject({ ok: true, segments: [{ prefix: old.prefix, until: { gtid: "0-1-28" } }] });
    expect(planChainedReplay([old, promoted(25)], "0-1-27", { gtid: "0-2-37" })).toMatchObject({
      ok: true,
      segments: [{ prefix: promoted(25).prefix, from: "0-1-27", files: ["bin.000002", "bin.000003"] }],
    });
  });

  it("follows two promotions", () => {
    const third = {
      prefix: "backups/binlog/c-3306-server-3/",
      index: index([{ name: "bin.000007", bytes: 1000, closed: false, startGtid: "0-2-38", lastGtid: "0-3-50", lastEventAt: T0 + 500_000 }]),
    };
    const plan = planChainedReplay([old, promoted(25), third], "0-1-5", { gtid: "0-3-45" });
    expect(plan.ok && plan.segments.map((segment) => [segment.prefix, segment.from, segment.until])).toEqual([
      [old.prefix, "0-1-5", { gtid: "0-1-25" }],
      [promoted(25).prefix, "0-1-25", { gtid: "0-2-38" }],
      [third.prefix, "0-2-38", { gtid: "0-3-45" }],
    ]);
  });

  it("refuses, saying where, when the new primary's archive starts past the end of the old one's (a real gap in the GTIDs)", () => {
    const plan = planChainedReplay([old, promoted(33)], "0-1-5", { gtid: "0-2-37" });
    expect(plan.ok).toBe(false);
    expect(!plan.ok && plan.problems).toEqual([
      `${promoted(33).prefix}: missing binlog span: the archive starts at 0-1-33, after the backup's position 0-1-5`,
      `${promoted(33).prefix} covers the rest from 0-1-33, but no earlier archive reaches 0-1-33 from 0-1-5 (a gap in the GTIDs between the primaries' archives)`,
      `${old.prefix}: missing binlog span: the archive ends at 0-1-30 (${new Date(T0 + 120_000).toISOString()}), before GTID 0-2-37`,
    ]);
  });

  it("a GTID of the new primary follows the new primary's history, one of the old primary's its history, where both hold the sequence number", () => {
    // The old primary archived 26..30 that no replica received; the new primary numbered its own 26.. on from 25.
    const diverged = {
      prefix: "backups/binlog/b-3306-server-2/",
      index: index([{ name: "bin.000002", bytes: 1000, closed: false, startGtid: "0-1-25", lastGtid: "0-2-40", lastEventAt: T0 + 300_000 }]),
    };
    expect(planChainedReplay([old, diverged], "0-1-5", { gtid: "0-2-28" })).toMatchObject({
      ok: true,
      segments: [{ prefix: old.prefix, until: { gtid: "0-1-25" } }, { prefix: diverged.prefix, from: "0-1-25", until: { gtid: "0-2-28" } }],
    });
    expect(planChainedReplay([diverged, old], "0-1-5", { gtid: "0-1-28" })).toMatchObject({ ok: true, segments: [{ prefix: old.prefix, until: { gtid: "0-1-28" } }] });
  });
});

describe("binlogsToDelete", () => {
  it("deletes closed files wholly at or before the oldest kept backup's position, never the newest", () => {
    expect(binlogsToDelete(index(three), "0-1-25")).toEqual(["bin.000001", "bin.000002"]);
    expect(binlogsToDelete(index(three), "0-1-15")).toEqual(["bin.000001"]);
    expect(binlogsToDelete(index(three), "0-1-9")).toEqual([]);
    expect(binlogsToDelete(index(three), undefined)).toEqual([]);
  });
});

describe("archivePrefix", () => {
  it("names the server by address and server id", () => {
    expect(archivePrefix("db-1.internal", 3306, 2)).toBe("backups/binlog/db-1.internal-3306-server-2/");
    expect(archivePrefix("fe80::1", 3306, 7)).toBe("backups/binlog/fe80__1-3306-server-7/");
  });
});

describe("formatArchiveStatus (the REPL's backups)", () => {
  it("says where each primary's archive runs, its last upload and GTID, then the problems", () => {
    const lines = formatArchiveStatus({
      problems: ["binlog archive of db:3306: GTID gap, domain 0 sequence 5 to 9 is not archived (take a full backup)"],
      detail: [
        { server: "db:3306", runsHere: true, archive: "backups/binlog/db-3306-server-1/", state: "streaming", lastUploadAt: "2026-12-05T10:00:00.000Z", lastGtid: "0-1-42", gaps: 1 },
        { server: "other:3306", runsHere: false },
      ],
    });
    expect(lines).toEqual([
      "binlog archive of db:3306 (backups/binlog/db-3306-server-1/): streaming here, last upload 2026-12-05T10:00:00.000Z, last GTID 0-1-42",
      "binlog archive of other:3306: archived by another node",
      "problem: binlog archive of db:3306: GTID gap, domain 0 sequence 5 to 9 is not archived (take a full backup)",
    ]);
  });
});

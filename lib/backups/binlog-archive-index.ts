import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { ObjectStorage } from "../storage/object-storage";
import type { ArchiveIndex, ArchivedFile, GtidGap } from "./binlog-archiver";
import { formatGtidState, parseGtidState } from "./binlog-events";
import type { GtidState } from "./binlog-events";
import { storeEncrypted } from "./backup-files";
import { DecryptStream } from "./encryption";

/** Every primary's archive lives under this prefix, one folder per server. */
export const BINLOG_ARCHIVE_ROOT = "backups/binlog/";
const INDEX_NAME = "index.json.enc";

/**
 * The archive folder of one database server: its address and its server id, so that the archive of a
 * promoted replica (another server id, often another address) never mixes with the old primary's, whose
 * binary logs may carry the same file names.
 */
export function archivePrefix(host: string, port: number, serverId: number): string {
  return `${serverArchivesPrefix(host, port)}${serverId}/`;
}

/** What the archive folders of every server id at one address start with. */
export function serverArchivesPrefix(host: string, port: number): string {
  const safeHost = host.replace(/[^A-Za-z0-9.-]/g, "_");
  return `${BINLOG_ARCHIVE_ROOT}${safeHost}-${port}-server-`;
}

/** Per GTID domain, the highest GTID any of the archives holds. */
export function newestArchivedGtids(indexes: readonly ArchiveIndex[]): GtidState {
  const newest: GtidState = new Map();
  for (const index of indexes) {
    for (const [domain, gtid] of parseGtidState(index.archivedGtid)) {
      if (gtid.seq > (newest.get(domain)?.seq ?? -1n)) newest.set(domain, gtid);
    }
  }
  return newest;
}

export async function storeArchiveIndex(storage: ObjectStorage, prefix: string, index: ArchiveIndex, key: Buffer): Promise<void> {
  await storeEncrypted(storage, `${prefix}${INDEX_NAME}`, Readable.from([Buffer.from(JSON.stringify(index))]), key);
}

/** The archive folders there are, each with its index (decrypted and authenticated with the key); folders without a readable index are named apart. */
export async function readArchiveIndexes(storage: ObjectStorage, key: Buffer): Promise<{ archives: { prefix: string; index: ArchiveIndex }[]; unreadable: string[] }> {
  const objects = await storage.list(BINLOG_ARCHIVE_ROOT);
  const prefixes = [...new Set(objects.filter((object) => object.key.endsWith(`/${INDEX_NAME}`)).map((object) => object.key.slice(0, -INDEX_NAME.length)))].sort();
  const archives: { prefix: string; index: ArchiveIndex }[] = [];
  const unreadable: string[] = [];
  for (const prefix of prefixes) {
    const index = await readIndex(storage, `${prefix}${INDEX_NAME}`, key);
    if (index === undefined) unreadable.push(prefix);
    else archives.push({ prefix, index });
  }
  return { archives, unreadable };
}

/** The archiver replaces the index every flush: a read that overlaps a replacement is tried again. */
const INDEX_READ_ATTEMPTS = 3;

async function readIndex(storage: ObjectStorage, objectKey: string, key: Buffer): Promise<ArchiveIndex | undefined> {
  for (let attempt = 1; attempt <= INDEX_READ_ATTEMPTS; attempt++) {
    try {
      const { body } = await storage.get(objectKey);
      const chunks: Buffer[] = [];
      await pipeline(body, new DecryptStream(key), createGunzip(), new Writable({ write: (chunk: Buffer, _encoding, done) => (chunks.push(chunk), done()) }));
      const index = JSON.parse(Buffer.concat(chunks).toString("utf8")) as ArchiveIndex;
      if (index.formatVersion !== 1 || !Array.isArray(index.files)) return undefined;
      return index;
    } catch {
      if (attempt < INDEX_READ_ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
  return undefined;
}

/** Where a point-in-time restore stops: before a moment, or after a GTID (inclusive). */
export type ReplayPoint = { readonly time: Date } | { readonly gtid: string };

export type ReplayPlan =
  | { readonly ok: true; readonly files: readonly string[]; readonly domains: readonly number[] }
  | { readonly ok: false; readonly problem: string };

const seqIn = (state: GtidState, domain: number): bigint => state.get(domain)?.seq ?? 0n;

/** The last GTID a file reaches in a domain: its own last one, else where it started. */
function endOf(file: ArchivedFile, domain: number): bigint {
  const last = parseGtidState(file.lastGtid).get(domain)?.seq;
  return last ?? seqIn(parseGtidState(file.startGtid), domain);
}

function describePoint(point: ReplayPoint): string {
  return "time" in point ? point.time.toISOString() : `GTID ${point.gtid}`;
}

/**
 * Which archived files bring a copy taken at GTID position `from` forward to `point`, or why the archive
 * cannot: it starts after `from`, a file in between is missing (its successor starts past where it ends),
 * a gap the archiver found lies in the span, or the archive does not reach the point yet.
 * Only the domains of `from` are followed (the backup's server's transactions).
 */
export function planReplay(index: ArchiveIndex, from: string, point: ReplayPoint): ReplayPlan {
  const start = parseGtidState(from);
  const domains = [...start.keys()].sort((a, b) => a - b);
  if (domains.length === 0) return { ok: false, problem: "the backup records no GTID position to replay from" };
  const files = index.files;
  if (files.length === 0) return { ok: false, problem: "missing binlog span: the archive holds no binary logs" };
  const wanted = "gtid" in point ? parseGtidState(point.gtid) : undefined;
  if (wanted !== undefined && domains.some((domain) => seqIn(wanted, domain) < seqIn(start, domain))) {
    return { ok: false, problem: `${describePoint(point)} is before the backup's position ${from}` };
  }

  // The first file needed: the last one that starts at or before the backup's position in every domain.
  let first = -1;
  for (const [position, file] of files.entries()) {
    const starts = parseGtidState(file.startGtid);
    if (domains.every((domain) => seqIn(starts, domain) <= seqIn(start, domain))) first = position;
  }
  if (first === -1) {
    return { ok: false, problem: `missing binlog span: the archive starts at ${files[0]!.startGtid || "-"}, after the backup's position ${from}` };
  }

  const chosen: ArchivedFile[] = [];
  let reached = false;
  for (let position = first; position < files.length && !reached; position++) {
    const file = files[position]!;
    const previous = chosen[chosen.length - 1];
    if (previous !== undefined) {
      const starts = parseGtidState(file.startGtid);
      for (const domain of domains) {
        const ended = endOf(previous, domain);
        if (seqIn(starts, domain) > ended) {
          return {
            ok: false,
            problem: `missing binlog span: domain ${domain} sequence ${ended + 1n} to ${seqIn(starts, domain)} is not in the archive (between ${previous.name} and ${file.name})`,
          };
        }
      }
    }
    chosen.push(file);
    reached =
      wanted !== undefined ? domains.every((domain) => endOf(file, domain) >= seqIn(wanted, domain)) : file.lastEventAt >= (point as { time: Date }).time.getTime();
  }
  if (!reached && "time" in point && index.completeUntil >= point.time.getTime()) reached = true;
  if (!reached) {
    const last = files[files.length - 1]!;
    return {
      ok: false,
      problem: `missing binlog span: the archive ends at ${last.lastGtid || last.startGtid || "-"} (${new Date(Math.max(last.lastEventAt, index.completeUntil)).toISOString()}), before ${describePoint(point)}`,
    };
  }
  const gap = index.gaps.find((found) => gapInSpan(found, start, point, wanted));
  if (gap !== undefined) {
    return { ok: false, problem: `missing binlog span: domain ${gap.domain} sequence ${gap.missingFrom} to ${gap.missingTo} never reached the archive (found before ${gap.file})` };
  }
  return { ok: true, files: chosen.map((file) => file.name), domains };
}

/** One archive's part of a replay: its files, replayed from a GTID position up to a point. */
export interface ReplaySegment {
  readonly prefix: string;
  readonly files: readonly string[];
  readonly from: string;
  readonly until: ReplayPoint;
}

export type ChainedReplayPlan =
  | { readonly ok: true; readonly segments: readonly ReplaySegment[]; readonly domains: readonly number[] }
  | { readonly ok: false; readonly problems: readonly string[] };

/** `state` in the domains of `from`, never behind `from`: where a later archive's replay starts. */
function startInDomains(from: GtidState, state: GtidState): string {
  const merged: GtidState = new Map();
  for (const [domain, gtid] of from) {
    const other = state.get(domain);
    merged.set(domain, other !== undefined && other.seq > gtid.seq ? other : gtid);
  }
  return formatGtidState(merged);
}

/**
 * Which archives bring a copy from `from` to `point`: one archive when it covers the whole span, else a chain
 * across promotions: an earlier primary's archive up to where a later primary's archive starts (the GTID state
 * of its first file), then that one from there. Each later archive is taken from its start, so that what the
 * new primary never had (transactions lost in a failover) is not replayed past the switch. The problems say,
 * per archive, why none covers the span (a real gap in the GTIDs).
 */
export function planChainedReplay(archives: readonly Archive[], from: string, point: ReplayPoint): ChainedReplayPlan {
  // A GTID asked for is in the history of the server that wrote it: that server's archive is tried first, alone or
  // at the end of a chain (an older primary's archive may hold the same sequence numbers, lost in a failover).
  const writers = "gtid" in point ? new Set([...parseGtidState(point.gtid).values()].map((gtid) => gtid.serverId)) : new Set<number>();
  const written = (archive: Archive): boolean => writers.has(Number(/-server-(\d+)\/$/.exec(archive.prefix)?.[1]));
  const problems: string[] = [];
  for (const last of [archives.filter(written), archives.filter((archive) => !written(archive))]) {
    const plan = planEndingWith(last, archives, from, point, problems);
    if (plan !== undefined) return plan;
  }
  return { ok: false, problems };
}

type Archive = { readonly prefix: string; readonly index: ArchiveIndex };

/** A plan whose last archive is one of `last`: one of them alone, or a chain of the others up to where it starts. */
function planEndingWith(last: readonly Archive[], archives: readonly Archive[], from: string, point: ReplayPoint, problems: string[]): ChainedReplayPlan | undefined {
  for (const { prefix, index } of last) {
    const plan = planReplay(index, from, point);
    if (plan.ok) return { ok: true, segments: [{ prefix, files: plan.files, from, until: point }], domains: plan.domains };
    problems.push(`${prefix}: ${plan.problem}`);
  }
  const start = parseGtidState(from);
  if (start.size === 0) return undefined;
  for (const later of last) {
    const first = later.index.files[0];
    if (first === undefined) continue;
    const switchAt = startInDomains(start, parseGtidState(first.startGtid));
    if (switchAt === formatGtidState(start)) continue;
    const tail = planReplay(later.index, switchAt, point);
    if (!tail.ok) continue;
    const head = planChainedReplay(
      archives.filter((other) => other !== later),
      from,
      { gtid: switchAt },
    );
    if (head.ok) {
      return { ok: true, segments: [...head.segments, { prefix: later.prefix, files: tail.files, from: switchAt, until: point }], domains: tail.domains };
    }
    problems.push(`${later.prefix} covers the rest from ${switchAt}, but no earlier archive reaches ${switchAt} from ${from} (a gap in the GTIDs between the primaries' archives)`);
  }
  return undefined;
}

function gapInSpan(gap: GtidGap, start: GtidState, point: ReplayPoint, wanted: GtidState | undefined): boolean {
  if (!start.has(gap.domain)) return false;
  if (BigInt(gap.missingTo) <= seqIn(start, gap.domain)) return false;
  if (wanted !== undefined) return BigInt(gap.missingFrom) <= seqIn(wanted, gap.domain);
  // When the missing transactions were committed is unknown: any gap after the backup's position may lie before the moment.
  return "time" in point;
}

/**
 * Archived files that no kept full backup needs: closed files whose every GTID is at or before the oldest
 * kept backup's position (in each domain of the file). Without a kept backup nothing is deleted.
 */
export function binlogsToDelete(index: ArchiveIndex, oldestKeptPosition: string | undefined): string[] {
  if (oldestKeptPosition === undefined || oldestKeptPosition === "") return [];
  const kept = parseGtidState(oldestKeptPosition);
  const files = index.files;
  const doomed: string[] = [];
  for (const [position, file] of files.entries()) {
    const next = files[position + 1];
    // The newest file is the one being written (or the one a reconnect starts from): never deleted.
    if (!file.closed || next === undefined) break;
    // Everything in this file is before where the next one starts.
    const nextStarts = parseGtidState(next.startGtid);
    if (nextStarts.size === 0) break;
    if (![...nextStarts].every(([domain, { seq }]) => kept.has(domain) && seq <= seqIn(kept, domain))) break;
    doomed.push(file.name);
  }
  return doomed;
}

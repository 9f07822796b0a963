import fs from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { emptyScan, formatGtidState, gtidGaps, parseGtidState, scanEvents } from "./binlog-events";
import type { BinlogScan, GtidState } from "./binlog-events";

/** Where archived binary logs go (object storage, encrypted, in the backup service). A put of an existing name replaces it. */
export interface ArchiveSink {
  put(name: string, body: Readable): Promise<void>;
  /** Stores what the archive holds (after every upload that changed it), for restores, drills and retention. */
  putIndex?(index: ArchiveIndex): Promise<void>;
}

/** One archived binary log as a restore needs to know it without reading it. */
export interface ArchivedFile {
  readonly name: string;
  /** Bytes archived (up to its last complete event). */
  readonly bytes: number;
  /** The primary has moved on to the next file: this one is archived whole. */
  readonly closed: boolean;
  /** The GTID state the file starts from (its Gtid_list event): every GTID up to it is in earlier files. */
  readonly startGtid: string;
  /** The last GTID per domain in the file; empty when it holds no transaction. */
  readonly lastGtid: string;
  /** When its last archived event was written (ms since the epoch); 0 before any. */
  readonly lastEventAt: number;
}

/** What the archive of one primary holds: its files in order, the gaps found, and until when it is known complete. */
export interface ArchiveIndex {
  readonly formatVersion: 1;
  readonly files: readonly ArchivedFile[];
  readonly gaps: readonly GtidGap[];
  readonly archivedGtid: string;
  /**
   * The archive holds every transaction the primary had committed at this moment (ms; the start of the last
   * upload made while streaming), so a restore may stop anywhere before it even when no event followed.
   */
  readonly completeUntil: number;
  readonly updatedAt: number;
}

/** A running `mariadb-binlog --raw --stop-never`: it writes the server's binary logs into a directory until it exits. */
export interface BinlogStream {
  /** Resolves when the process has exited, with why (its error output). */
  readonly exited: Promise<string>;
  stop(): void;
}

export interface BinlogArchiverPorts {
  /** The primary's binary logs, oldest first (SHOW BINARY LOGS). */
  binaryLogs(): Promise<string[]>;
  /** Streams from the start of `firstFile` into `directory`, one local file per binary log. */
  startStream(firstFile: string, directory: string): BinlogStream;
  /** The GTID state a binary log on the primary starts from (its Gtid_list event), to choose where a new archive begins. */
  startStateOf?(file: string): Promise<string>;
  readonly sink: ArchiveSink;
}

export interface BinlogArchiverOptions {
  /** The local copy of the logs being streamed, and the archiver's own state; kept across restarts of the node. */
  readonly directory: string;
  /** BACKUP_BINLOG_FLUSH_SECONDS: how often what has arrived is uploaded (a file is also uploaded as soon as it is closed). */
  readonly flushIntervalMs: number;
  /** The first wait before reconnecting; it doubles up to `maxRestartDelayMs`. */
  readonly restartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
  /**
   * What the archives of earlier primaries hold (a GTID state): an archive that holds nothing yet (a promoted
   * replica's) starts with the newest binary log that begins at or before it, and must continue from it.
   */
  readonly continuesFrom?: string;
  readonly log: { info(message: string): void; warn(message: string): void; error(message: string): void };
}

export interface GtidGap {
  readonly file: string;
  readonly domain: number;
  readonly missingFrom: string;
  readonly missingTo: string;
  readonly detectedAt: number;
}

export interface BinlogArchiverStatus {
  readonly state: "stopped" | "connecting" | "streaming" | "waiting to reconnect";
  readonly restarts: number;
  readonly lastError: string | undefined;
  /** Missing spans of GTIDs found at a reconnect: the archive cannot replay across them. */
  readonly gaps: readonly GtidGap[];
  /** The last GTID per domain that is in the archive (e.g. "0-1-42"). */
  readonly archivedGtid: string;
  /** The newest archived file and how much of it. */
  readonly lastFile: string | undefined;
  readonly lastUploadAt: number | undefined;
}

interface FileRecord {
  uploaded: number;
  closed: boolean;
  startGtid?: string;
  lastGtid?: string;
  lastEventAt?: number;
}

interface SavedState {
  readonly files: Record<string, FileRecord>;
  readonly archivedGtid: string;
  readonly gaps: GtidGap[];
  readonly completeUntil?: number;
}

const STATE_FILE = "archive-state.json";
const BINLOG_NAME = /^[A-Za-z0-9_.-]+\.\d{6,}$/;
/** A connection that streamed this long before it dropped was healthy: the next reconnect starts with the first delay again. */
const HEALTHY_STREAM_MS = 60_000;
/** How long a commit may take to reach the local copy while streaming; an upload vouches for the archive only up to this long before it. */
const STREAM_DELAY_ALLOWANCE_MS = 2000;

/**
 * Streams the primary's binary log into a local directory (mariadb-binlog, supervised: restarted with
 * growing delays when the connection drops), uploads closed files and the growing tail, cut at the last
 * complete event, every flush interval, and checks at each new file that its GTID state follows on from
 * what is archived: a gap is logged as an error and kept in the status.
 */
export class BinlogArchiver {
  private readonly files = new Map<string, FileRecord>();
  private readonly scans = new Map<string, BinlogScan>();
  private archived: GtidState = new Map();
  private gaps: GtidGap[] = [];
  private state: BinlogArchiverStatus["state"] = "stopped";
  private restarts = 0;
  private lastError: string | undefined;
  private lastUploadAt: number | undefined;
  private completeUntil = 0;
  private stopped = true;
  private stream: BinlogStream | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private supervising: Promise<void> | undefined;
  private wake: () => void = () => undefined;

  constructor(
    private readonly ports: BinlogArchiverPorts,
    private readonly options: BinlogArchiverOptions,
  ) {}

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    await fs.promises.mkdir(this.options.directory, { recursive: true, mode: 0o700 });
    await this.loadState();
    this.flushTimer = setInterval(() => void this.flush().catch(() => undefined), this.options.flushIntervalMs);
    this.flushTimer.unref();
    this.supervising = this.supervise();
  }

  /** Stops streaming, uploads what arrived, and resolves once everything has ended. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.flushTimer);
    this.stream?.stop();
    this.wake();
    await this.supervising;
    await this.flush().catch(() => undefined);
    this.state = "stopped";
  }

  status(): BinlogArchiverStatus {
    const names = [...this.files.keys()].sort(compareBinlogNames);
    return {
      state: this.state,
      restarts: this.restarts,
      lastError: this.lastError,
      gaps: [...this.gaps],
      archivedGtid: formatGtidState(this.archived),
      lastFile: names[names.length - 1],
      lastUploadAt: this.lastUploadAt,
    };
  }

  /** Uploads what has arrived since the last flush (one flush at a time). */
  flush(): Promise<void> {
    const next = this.flushing.then(() => this.uploadNew());
    this.flushing = next.catch((error: Error) => {
      this.lastError = `upload failed: ${error.message}`;
      this.options.log.warn(`binlog archive: ${this.lastError}`);
    });
    return next;
  }

  private async supervise(): Promise<void> {
    const firstDelay = this.options.restartDelayMs ?? 1000;
    const maxDelay = this.options.maxRestartDelayMs ?? 30_000;
    let failures = 0;
    while (!this.stopped) {
      const started = Date.now();
      try {
        await this.streamOnce();
      } catch (error) {
        if (this.stopped) break;
        // A long healthy stream ends a round of growing delays: the next outage starts with the first delay.
        if (Date.now() - started >= HEALTHY_STREAM_MS) failures = 0;
        this.restarts += 1;
        this.lastError = (error as Error).message;
        this.state = "waiting to reconnect";
        const delay = Math.min(maxDelay, firstDelay * 2 ** failures);
        failures += 1;
        this.options.log.warn(`binlog archive: ${this.lastError}; reconnecting in ${Math.round(delay / 1000)} s (restart ${this.restarts})`);
        // Half fixed, half random, so that archivers restarted together do not reconnect together.
        await this.pause(delay / 2 + Math.random() * (delay / 2));
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** One connection: from the file to resume, until the stream exits; rejects with why it ended (unless stopping). */
  private async streamOnce(): Promise<void> {
    this.state = "connecting";
    const available = await this.ports.binaryLogs();
    const firstFile = await this.resumeFrom(available);
    if (firstFile === undefined) throw new Error("the primary lists no binary logs (is log_bin on?)");
    if (this.stopped) return;
    const stream = this.ports.startStream(firstFile, this.options.directory);
    this.stream = stream;
    this.state = "streaming";
    this.options.log.info(`binlog archive: streaming from ${firstFile}`);
    const why = await stream.exited;
    this.stream = undefined;
    // Whatever arrived before the drop is archived now, not at the next tick.
    await this.flush().catch(() => undefined);
    if (!this.stopped) throw new Error(`the binlog stream ended: ${why}`);
  }

  /**
   * The newest file already archived, if the primary still has it; for a new archive that continues an earlier
   * primary's, the newest file starting at or before where that one ends; else the oldest (a gap, if any, is
   * found by the GTID check).
   */
  private async resumeFrom(available: readonly string[]): Promise<string | undefined> {
    const known = [...this.files.keys()].sort(compareBinlogNames);
    const newest = known[known.length - 1];
    if (newest !== undefined) return available.includes(newest) ? newest : available[0];
    const earlier = parseGtidState(this.options.continuesFrom ?? "");
    if (earlier.size === 0 || this.ports.startStateOf === undefined) return available[0];
    for (const file of [...available].reverse()) {
      const starts = parseGtidState(await this.ports.startStateOf(file));
      if (gtidGaps(earlier, starts).length === 0) return file;
    }
    return available[0];
  }

  private async uploadNew(): Promise<void> {
    // Read before the directory is: everything committed by now that the stream had received is in what follows.
    // Only while streaming the primary's newest file (not catching up on older ones).
    let streamingAt = this.state === "streaming" ? Date.now() - STREAM_DELAY_ALLOWANCE_MS : undefined;
    const newestOnPrimary = streamingAt === undefined ? undefined : (await this.ports.binaryLogs().catch(() => [])).at(-1);
    const names = (await fs.promises.readdir(this.options.directory)).filter((name) => BINLOG_NAME.test(name)).sort(compareBinlogNames);
    if (newestOnPrimary === undefined || names[names.length - 1] !== newestOnPrimary) streamingAt = undefined;
    let changed = false;
    for (const [index, name] of names.entries()) {
      const file = path.join(this.options.directory, name);
      const scan = await this.scanFile(name, file);
      let record = this.files.get(name);
      if (!record) {
        // A new file: does it start where the archive ends?
        if (scan.startState === undefined && index === names.length - 1) continue;
        this.checkContinuity(name, scan.startState ?? new Map());
        record = { uploaded: 0, closed: false };
        this.files.set(name, record);
      }
      const closed = index < names.length - 1;
      if (scan.complete > record.uploaded) {
        await this.ports.sink.put(name, fs.createReadStream(file, { start: 0, end: scan.complete - 1 }));
        record.uploaded = scan.complete;
        this.lastUploadAt = Date.now();
        changed = true;
      }
      for (const [domain, gtid] of scan.lastGtids) {
        const known = this.archived.get(domain);
        if (!known || gtid.seq > known.seq) this.archived.set(domain, gtid);
      }
      if (record.uploaded === scan.complete) {
        record.startGtid = formatGtidState(scan.startState ?? new Map());
        record.lastGtid = formatGtidState(scan.lastGtids);
        record.lastEventAt = scan.lastEventTime * 1000;
      }
      if (closed && !record.closed && record.uploaded === scan.complete) {
        record.closed = true;
        changed = true;
      }
      // Archived whole: the local copy goes, but for the newest closed file, which a reconnect may start from.
      if (record.closed && index < names.length - 2) {
        await fs.promises.rm(file, { force: true });
        this.scans.delete(name);
      }
    }
    if (streamingAt !== undefined && streamingAt > this.completeUntil && this.state === "streaming") {
      this.completeUntil = streamingAt;
      changed = true;
    }
    if (changed) {
      await this.saveState();
      await this.ports.sink.putIndex?.(this.index());
    }
  }

  /** What the archive holds, in the order of the files. */
  index(): ArchiveIndex {
    const files = [...this.files.entries()]
      .sort(([a], [b]) => compareBinlogNames(a, b))
      .map(([name, record]) => ({
        name,
        bytes: record.uploaded,
        closed: record.closed,
        startGtid: record.startGtid ?? "",
        lastGtid: record.lastGtid ?? "",
        lastEventAt: record.lastEventAt ?? 0,
      }));
    return { formatVersion: 1, files, gaps: [...this.gaps], archivedGtid: formatGtidState(this.archived), completeUntil: this.completeUntil, updatedAt: Date.now() };
  }

  /** Scans what the file gained since the last scan; a file that shrank (streamed again from its start) is scanned anew. */
  private async scanFile(name: string, file: string): Promise<BinlogScan> {
    let scan = this.scans.get(name) ?? emptyScan();
    const { size } = await fs.promises.stat(file);
    if (size < scan.complete) scan = emptyScan();
    this.scans.set(name, scan);
    if (size === scan.complete) return scan;
    const handle = await fs.promises.open(file, "r");
    try {
      const bytes = Buffer.alloc(size - scan.complete);
      await handle.read(bytes, 0, bytes.length, scan.complete);
      scanEvents(scan, bytes);
    } finally {
      await handle.close();
    }
    return scan;
  }

  private checkContinuity(file: string, startState: GtidState): void {
    // The first file of a new archive continues the earlier primaries' archives, if any.
    const archived = this.files.size === 0 ? parseGtidState(this.options.continuesFrom ?? "") : this.archived;
    if (archived.size === 0) return;
    const where = this.files.size === 0 ? "neither the earlier primaries' archives nor this primary has it" : "the primary no longer has it";
    for (const gap of gtidGaps(archived, startState)) {
      const found: GtidGap = { file, domain: gap.domain, missingFrom: String(gap.missingFrom), missingTo: String(gap.missingTo), detectedAt: Date.now() };
      this.gaps.push(found);
      this.options.log.error(
        `binlog archive: GTID gap before ${file}: domain ${gap.domain} sequence ${gap.missingFrom} to ${gap.missingTo} is missing from the archive (${where}); point-in-time recovery cannot cross it`,
      );
    }
  }

  private async loadState(): Promise<void> {
    const text = await fs.promises.readFile(path.join(this.options.directory, STATE_FILE), "utf8").catch(() => undefined);
    if (text === undefined) return;
    const saved = JSON.parse(text) as SavedState;
    for (const [name, record] of Object.entries(saved.files)) this.files.set(name, record);
    this.archived = parseGtidState(saved.archivedGtid);
    this.gaps = saved.gaps;
    this.completeUntil = saved.completeUntil ?? 0;
  }

  private async saveState(): Promise<void> {
    const saved: SavedState = {
      files: Object.fromEntries(this.files),
      archivedGtid: formatGtidState(this.archived),
      gaps: this.gaps,
      completeUntil: this.completeUntil,
    };
    const target = path.join(this.options.directory, STATE_FILE);
    await fs.promises.writeFile(`${target}.new`, JSON.stringify(saved), { mode: 0o600 });
    await fs.promises.rename(`${target}.new`, target);
  }
}

/** mysql-bin.000009 before mysql-bin.000010 (and before mysql-bin.1000000). */
export function compareBinlogNames(a: string, b: string): number {
  const [baseA, numberA] = splitName(a);
  const [baseB, numberB] = splitName(b);
  if (baseA !== baseB) return baseA < baseB ? -1 : 1;
  return numberA - numberB;
}

function splitName(name: string): [string, number] {
  const dot = name.lastIndexOf(".");
  return [name.slice(0, dot), Number(name.slice(dot + 1))];
}

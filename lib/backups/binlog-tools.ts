import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import type { TransformCallback } from "node:stream";
import mysql from "mysql2/promise";
import type { RowDataPacket } from "mysql2/promise";
import type { ArchiveSink, BinlogArchiverPorts, BinlogStream } from "./binlog-archiver";

/** Host, port and user for the MariaDB command-line tools; the password goes in their environment, never on the command line. */
export function toolConnection(url: string): { args: string[]; env: NodeJS.ProcessEnv } {
  const parsed = new URL(url);
  return {
    args: [`--host=${parsed.hostname}`, `--port=${parsed.port || "3306"}`, `--user=${decodeURIComponent(parsed.username)}`, "--protocol=TCP"],
    env: { ...process.env, MYSQL_PWD: decodeURIComponent(parsed.password) },
  };
}

/** Collects the end of a process's error output, for the message when it fails. */
function errorOutputOf(stream: NodeJS.ReadableStream): () => string {
  let text = "";
  stream.on("data", (chunk: Buffer) => {
    text = (text + chunk.toString("utf8")).slice(-2000);
  });
  return () => text.trim();
}

/**
 * The archiver's ports on a real primary: `url` is an account with REPLICATION SLAVE and BINLOG MONITOR
 * (or SUPER); `serverId` must differ from every server's and replica's id (the stream registers as one).
 */
export function mariadbBinlogPorts(options: { readonly url: string; readonly serverId: number; readonly sink: ArchiveSink }): BinlogArchiverPorts {
  const connection = toolConnection(options.url);
  return {
    sink: options.sink,
    async binaryLogs() {
      const client = await mysql.createConnection({ uri: options.url, connectTimeout: 5000 });
      try {
        const [rows] = await client.query<RowDataPacket[]>("SHOW BINARY LOGS");
        return rows.map((row) => String(row.Log_name));
      } finally {
        client.destroy();
      }
    },
    async startStateOf(file) {
      const client = await mysql.createConnection({ uri: options.url, connectTimeout: 5000 });
      try {
        const [rows] = await client.query<RowDataPacket[]>("SHOW BINLOG EVENTS IN ? LIMIT 4", [file]);
        // Info of a Gtid_list event: "[0-1-100,1-2-7]".
        const list = rows.find((row) => row.Event_type === "Gtid_list");
        return String(list?.Info ?? "").replace(/^\[|\]$/g, "");
      } finally {
        client.destroy();
      }
    },
    startStream(firstFile, directory): BinlogStream {
      const child = spawn(
        "mariadb-binlog",
        [
          "--read-from-remote-server",
          "--raw",
          "--stop-never",
          `--stop-never-slave-server-id=${options.serverId}`,
          `--result-file=${directory}${path.sep}`,
          ...connection.args,
          firstFile,
        ],
        { env: connection.env, stdio: ["ignore", "ignore", "pipe"] },
      );
      const errors = errorOutputOf(child.stderr);
      const exited = new Promise<string>((resolve) => {
        child.on("error", (error) => resolve(`mariadb-binlog could not start: ${error.message}`));
        child.on("close", (code, signal) => resolve(`mariadb-binlog exited (${signal ?? `code ${code}`}): ${errors() || "no message"}`));
      });
      return { exited, stop: () => child.kill("SIGTERM") };
    },
  };
}

/** Where a replay stops: before the first event at or after a moment (to the second), or after a GTID (inclusive). */
export type ReplayUntil = { readonly time: Date } | { readonly gtid: string };

export interface ReplayOptions {
  /** Archived binary logs as local files, in order. */
  readonly files: readonly string[];
  /** mysql://user:password@host:port of the server to apply them to. */
  readonly target: string;
  /** The GTID position the restored dump was taken at: only later transactions are applied. */
  readonly fromGtid?: string;
  readonly until?: ReplayUntil;
  /** Only the transactions of these GTID domains (the backup's server's). */
  readonly domains?: readonly number[];
  /** Only this database's changes (e.g. "shoal_media"). */
  readonly database?: string;
  /** Applies them to a database of another name (a drill's scratch database). */
  readonly renameDatabase?: { readonly from: string; readonly to: string };
  /**
   * Applies without writing the target's own binary log (SET sql_log_bin=0; needs SUPER or BINLOG ADMIN),
   * so that a drill's scratch changes do not reach the target's replicas.
   */
  readonly skipTargetBinlog?: boolean;
  /**
   * Applies each transaction under its archived GTID. Off by default: a target with a binary log of its own in
   * gtid_strict_mode (any MariaDB primary, or one that the dump was just restored into) refuses GTIDs lower than
   * its own, so the target numbers the replayed transactions itself.
   */
  readonly keepGtids?: boolean;
}

/** mariadb-binlog's line that makes the next transaction take the archived GTID's sequence number. */
const GTID_SEQ_NO_LINE = /^\/\*M?!100001 SET @@session\.gtid_seq_no=\d+\*\/\/\*!\*\/;$/;

/** Drops the lines that set a transaction's GTID sequence number, whole lines at a time. */
class WithoutGtidSequence extends Transform {
  private rest = "";

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const lines = (this.rest + chunk.toString("latin1")).split("\n");
    this.rest = lines.pop() ?? "";
    const kept = lines.filter((line) => !GTID_SEQ_NO_LINE.test(line));
    callback(null, kept.length > 0 ? Buffer.from(kept.join("\n") + "\n", "latin1") : undefined);
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.rest === "" || GTID_SEQ_NO_LINE.test(this.rest) ? undefined : Buffer.from(this.rest, "latin1"));
  }
}

/** mariadb-binlog's comment line of a GTID event: "#251205 10:00:00 server id 1  end_log_pos 342 ... GTID 0-1-42 trans". */
const GTID_COMMENT = /^#\d{6}\s.*\bGTID (\d+)-(\d+)-(\d+)\b/;

/** Notes the last GTID per domain that mariadb-binlog's output passes on, whole lines at a time. */
class GtidWatch extends Transform {
  readonly last = new Map<number, string>();
  private rest = "";

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const lines = (this.rest + chunk.toString("latin1")).split("\n");
    this.rest = (lines.pop() ?? "").slice(-4096);
    for (const line of lines) {
      const match = line.startsWith("#") ? GTID_COMMENT.exec(line) : null;
      if (match) this.last.set(Number(match[1]), `${match[1]}-${match[2]}-${match[3]}`);
    }
    callback(null, chunk);
  }

  position(): string {
    return [...this.last.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, gtid]) => gtid)
      .join(",");
  }
}

/** "YYYY-MM-DD HH:MM:SS" in UTC; mariadb-binlog reads it in its time zone, which the replay sets to UTC. */
function utcDatetime(moment: Date): string {
  return moment.toISOString().slice(0, 19).replace("T", " ");
}

/** The mariadb-binlog arguments of a replay (exported for tests of the choice of options). */
export function replayArguments(options: ReplayOptions): string[] {
  if (options.files.length === 0) throw new Error("no binary log files to replay");
  const until = options.until;
  if (until && "time" in until && Number.isNaN(until.time.getTime())) throw new Error("the replay's stop time is not a valid date");
  return [
    ...(options.fromGtid !== undefined && options.fromGtid !== "" ? [`--start-position=${options.fromGtid}`] : []),
    ...(until === undefined ? [] : "time" in until ? [`--stop-datetime=${utcDatetime(until.time)}`] : [`--stop-position=${until.gtid}`]),
    ...(options.domains && options.domains.length > 0 ? [`--do-domain-ids=${options.domains.join(",")}`] : []),
    ...(options.database ? [`--database=${options.database}`] : []),
    ...(options.renameDatabase ? [`--rewrite-db=${options.renameDatabase.from}->${options.renameDatabase.to}`] : []),
    ...(options.skipTargetBinlog ? ["--disable-log-bin"] : []),
    ...options.files,
  ];
}

/**
 * Applies archived binary logs to a server: `mariadb-binlog <files> | mariadb`, streamed (nothing held in
 * memory); rejects with the tools' error output when either fails. Resolves with the bytes of SQL applied and
 * the last GTID per domain that was replayed (the archived numbers, whatever the target numbers them).
 */
export async function replayBinlogs(options: ReplayOptions): Promise<{ sqlBytes: number; lastGtid: string }> {
  const args = replayArguments(options);
  for (const file of options.files) await fs.promises.access(file, fs.constants.R_OK);
  const connection = toolConnection(options.target);
  const reader = spawn("mariadb-binlog", args, { env: { ...process.env, TZ: "UTC" }, stdio: ["ignore", "pipe", "pipe"] });
  const applier = spawn("mariadb", [...connection.args, "--binary-mode", "--batch"], { env: connection.env, stdio: ["pipe", "ignore", "pipe"] });
  const readerErrors = errorOutputOf(reader.stderr);
  const applierErrors = errorOutputOf(applier.stderr);
  let sqlBytes = 0;
  reader.stdout.on("data", (chunk: Buffer) => {
    sqlBytes += chunk.length;
  });
  const watch = new GtidWatch();
  const read = reader.stdout.pipe(watch);
  (options.keepGtids ? read : read.pipe(new WithoutGtidSequence())).pipe(applier.stdin);
  // The applier failing first closes its input; the reader's EPIPE is then not the error to report.
  applier.stdin.on("error", () => undefined);
  const exitOf = (child: typeof reader | typeof applier, name: string, errors: () => string) =>
    new Promise<void>((resolve, reject) => {
      child.on("error", (error) => reject(new Error(`${name} could not start: ${error.message}`)));
      child.on("close", (code, signal) => (code === 0 ? resolve() : reject(new Error(`${name} failed (${signal ?? `exit ${code}`}): ${errors() || "no message"}`))));
    });
  const results = await Promise.allSettled([exitOf(applier, "mariadb", applierErrors), exitOf(reader, "mariadb-binlog", readerErrors)]);
  const failure = results.find((result) => result.status === "rejected");
  if (failure) throw failure.reason as Error;
  return { sqlBytes, lastGtid: watch.position() };
}

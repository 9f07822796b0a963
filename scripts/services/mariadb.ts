/**
 * Private MariaDB replication sets (one primary, 0..3 replicas) on free 127.0.0.1 ports, for
 * integration tests and benchmarks. Never touches the system instance.
 *
 * API:
 *   prepareMariaDbTemplate(dir) -> datadir path   one mariadb-install-db run; instances copy it (cp -a)
 *   startMariaDbReplicationSet({ replicas, baseDir?, templateDir? }) -> MariaDbReplicationSet
 *     baseDir: parent of the set's own temporary directory (default os.tmpdir()); set.stop() deletes
 *              that directory.
 *     templateDir: a datadir from prepareMariaDbTemplate; default $SHOAL_TEST_MARIADB_TEMPLATE, else
 *              one is made on first use and reused for the rest of this process.
 *   MariaDbServer: name, port, socket, dir, start(), stop(), kill() (SIGKILL), isRunning(), query() as root over the socket.
 *     semiSync: semi-synchronous replication (the primary's commits wait for a replica's acknowledgement,
 *              AFTER_SYNC); every server has both sides loaded, so a promoted replica can take the role.
 *   MariaDbReplicationSet: primary, replicas, primaryUrl, replicaUrls (user `shoal`, no database),
 *     adminUser/adminPassword (every privilege, over TCP: what promotion needs),
 *     stopReplicaSqlThread(i), startReplicaSqlThread(i), waitForReplicaCatchUp(i, timeoutMs), stop().
 *
 * Replicas keep a binary log of what they apply (log_slave_updates), so any of them can be promoted and
 * the others replicate from it by GTID.
 *
 * The `shoal` user may do anything on databases named shoal_* and nothing else; in particular it lacks
 * READ_ONLY ADMIN, so writing to a replica fails with ER_OPTION_PREVENTS_STATEMENT (1290).
 * Durability is traded for speed (innodb_flush_log_at_trx_commit=2, no doublewrite): the data is thrown
 * away, and clean restarts through stop()/start() lose nothing.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import mysql from "mysql2/promise";
import type { RowDataPacket } from "mysql2/promise";
import { binaryPath } from "./binaries";
import { canConnect, freePort } from "./ports";
import {
  ServerProcess,
  deleteDirectoryWhenProcessEnds,
  onFreePort,
  removeDirectory,
  tailOfFiles,
} from "./processes";

const run = promisify(execFile);

export const APP_USER = "shoal";
const REPLICATION_USER = "replicator";
const ADMIN_USER = "shoal_admin";
/** Long enough that a commit in a test never falls back to asynchronous while a replica is up. */
const SEMI_SYNC_TIMEOUT_MS = 60_000;
/** mariadbd refuses to run as root; as root we hand the instance directories to this account. */
const SERVER_ACCOUNT = "mysql";
const MAX_REPLICAS = 3;
/** Unix socket paths longer than this do not fit in sockaddr_un. */
const MAX_SOCKET_PATH = 107;

export interface MariaDbServer {
  readonly name: string;
  readonly port: number;
  readonly socket: string;
  readonly dir: string;
  /** The server's process id while it runs. */
  readonly pid: number | undefined;
  /** (Re)starts with the same data and port; resolves when it accepts connections. */
  start(): Promise<void>;
  /** Clean shutdown (SIGTERM); resolves when the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash: nothing is flushed; resolves when the process has exited. */
  kill(): Promise<void>;
  isRunning(): boolean;
  /** Runs one statement as root over the unix socket; non-SELECT statements give []. */
  query<T = unknown>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface MariaDbReplicationSet {
  readonly primary: MariaDbServer;
  readonly replicas: readonly MariaDbServer[];
  /** mysql://shoal:<password>@127.0.0.1:<port> (no database in the path) */
  readonly primaryUrl: string;
  /** An account with every privilege, over TCP from 127.0.0.1 (MYSQL_ADMIN_USER, MYSQL_ADMIN_PASSWORD). */
  readonly adminUser: string;
  readonly adminPassword: string;
  readonly replicaUrls: readonly string[];
  /** STOP SLAVE SQL_THREAD: the replica keeps receiving events but stops applying them. */
  stopReplicaSqlThread(index: number): Promise<void>;
  startReplicaSqlThread(index: number): Promise<void>;
  /** Waits until the replica has applied everything the primary has binlogged so far. */
  waitForReplicaCatchUp(index: number, timeoutMs?: number): Promise<void>;
  /** Stops every server and deletes the set's directory. */
  stop(): Promise<void>;
}

export interface MariaDbReplicationSetOptions {
  readonly replicas: number;
  readonly baseDir?: string;
  readonly templateDir?: string;
  readonly semiSync?: boolean;
}

const runningAsRoot = (): boolean => process.getuid?.() === 0;

async function handToServerAccount(dir: string): Promise<void> {
  if (runningAsRoot()) await run("chown", [`${SERVER_ACCOUNT}:`, dir]);
}

/** mkdtemp makes 0700 directories, which the server account could not traverse. */
async function makeTraversable(dir: string): Promise<void> {
  if (runningAsRoot()) await fs.promises.chmod(dir, 0o755);
}

/** Options that shape the files on disk, so the template and every server must agree on them. */
const STORAGE_OPTIONS = ["--innodb-log-file-size=16M"];

/**
 * Creates a fresh datadir (mariadb-install-db) under `dir` and returns its path. Root gets unix-socket
 * authentication, which is what MariaDbServer.query() uses; root over TCP is refused. When not running
 * as root, socket authentication would map to the wrong OS user, so root gets an empty password instead.
 */
export async function prepareMariaDbTemplate(dir: string): Promise<string> {
  await fs.promises.mkdir(dir, { recursive: true });
  await makeTraversable(dir);
  const datadir = path.join(dir, "datadir");
  const log = path.join(dir, "install-db.log");
  const args = [
    "--no-defaults",
    `--datadir=${datadir}`,
    `--auth-root-authentication-method=${runningAsRoot() ? "socket" : "normal"}`,
    "--skip-test-db",
    "--skip-name-resolve",
    ...(runningAsRoot() ? [`--user=${SERVER_ACCOUNT}`] : []),
    ...STORAGE_OPTIONS,
  ];
  try {
    const { stdout, stderr } = await run(binaryPath("mariadb-install-db"), args, { maxBuffer: 16 * 1024 * 1024 });
    await fs.promises.writeFile(log, stdout + stderr);
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message: string };
    await fs.promises.writeFile(log, `${failure.stdout ?? ""}${failure.stderr ?? ""}`);
    throw new Error(`mariadb-install-db failed: ${failure.message.split("\n")[0]}\n${tailOfFiles([log])}`);
  }
  return datadir;
}

let templateMadeByThisProcess: Promise<string> | undefined;

function templateForThisProcess(): Promise<string> {
  if (templateMadeByThisProcess === undefined) {
    const making = (async () => {
      const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-mariadb-template-"));
      deleteDirectoryWhenProcessEnds(dir);
      return prepareMariaDbTemplate(dir);
    })();
    making.catch(() => {
      templateMadeByThisProcess = undefined;
    });
    templateMadeByThisProcess = making;
  }
  return templateMadeByThisProcess;
}

type Role = { kind: "primary"; semiSync: boolean } | { kind: "replica"; serverId: number; semiSync: boolean };

class MariaDbInstance implements MariaDbServer {
  readonly socket: string;
  private currentPort = 0;
  private readonly process: ServerProcess;
  private readonly datadir: string;

  constructor(
    readonly name: string,
    readonly dir: string,
    private readonly role: Role,
  ) {
    this.socket = path.join(dir, "mysqld.sock");
    this.datadir = path.join(dir, "data");
    if (this.socket.length > MAX_SOCKET_PATH) {
      throw new Error(`socket path too long for a unix socket (${this.socket.length} > ${MAX_SOCKET_PATH}): ${this.socket}`);
    }
    this.process = new ServerProcess({
      label: `mariadb ${name}`,
      command: binaryPath("mariadbd"),
      args: () => this.serverArgs(),
      outputFile: path.join(dir, "mariadbd.out"),
      logFiles: [path.join(dir, "mariadbd.err")],
      probe: () => this.probe(),
      readyTimeoutMs: 60_000,
      stopTimeoutMs: 60_000,
    });
  }

  get port(): number {
    return this.currentPort;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** First start: copies the template and picks a port. */
  async create(templateDatadir: string): Promise<void> {
    await fs.promises.mkdir(this.dir);
    await makeTraversable(this.dir);
    await handToServerAccount(this.dir);
    await run("cp", ["-a", templateDatadir, this.datadir]);
    await onFreePort(freePort, async (port) => {
      this.currentPort = port;
      await this.process.start();
    });
  }

  start(): Promise<void> {
    return this.process.start();
  }

  stop(): Promise<void> {
    return this.process.stop();
  }

  kill(): Promise<void> {
    return this.process.kill("SIGKILL");
  }

  isRunning(): boolean {
    return this.process.isRunning();
  }

  async query<T = unknown>(sql: string, params?: unknown[]): Promise<T[]> {
    // One connection per call: cheap over the socket, and nothing goes stale across restarts.
    const connection = await mysql.createConnection({ socketPath: this.socket, user: "root", connectTimeout: 5000 });
    try {
      const [rows] = await connection.query<RowDataPacket[]>(sql, params);
      return Array.isArray(rows) ? (rows as T[]) : [];
    } finally {
      connection.destroy();
    }
  }

  private async probe(): Promise<void> {
    await this.query("SELECT 1");
    await canConnect(this.currentPort);
  }

  private serverArgs(): string[] {
    const common = [
      "--no-defaults",
      `--datadir=${this.datadir}`,
      `--socket=${this.socket}`,
      `--pid-file=${path.join(this.dir, "mariadbd.pid")}`,
      `--log-error=${path.join(this.dir, "mariadbd.err")}`,
      // Its own temporary directory: /tmp is shared with other tests that create and remove files there.
      `--tmpdir=${this.dir}`,
      `--port=${this.currentPort}`,
      "--bind-address=127.0.0.1",
      "--skip-name-resolve",
      ...(runningAsRoot() ? [`--user=${SERVER_ACCOUNT}`] : []),
      ...STORAGE_OPTIONS,
      "--innodb-buffer-pool-size=32M",
      "--innodb-log-buffer-size=2M",
      "--innodb-flush-log-at-trx-commit=2",
      "--innodb-doublewrite=0",
      "--aria-pagecache-buffer-size=8M",
      "--key-buffer-size=1M",
      "--performance-schema=0",
      "--character-set-server=utf8mb4",
      "--collation-server=utf8mb4_unicode_ci",
      "--gtid-strict-mode=1",
    ];
    const binlog = ["--log-bin=mysql-bin", "--binlog-format=ROW"];
    const semiSync = this.role.semiSync
      ? [
          `--rpl-semi-sync-master-enabled=${this.role.kind === "primary" ? "ON" : "OFF"}`,
          `--rpl-semi-sync-slave-enabled=${this.role.kind === "replica" ? "ON" : "OFF"}`,
          "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
          // Asynchronous until a replica has connected (setup runs before any does), semi-synchronous from then on.
          "--rpl-semi-sync-master-wait-no-slave=OFF",
          `--rpl-semi-sync-master-timeout=${SEMI_SYNC_TIMEOUT_MS}`,
        ]
      : [];
    if (this.role.kind === "primary") {
      return [...common, "--server-id=1", ...binlog, ...semiSync];
    }
    // Slave threads start by themselves on restart (no --skip-slave-start) from master.info in the datadir.
    return [...common, `--server-id=${this.role.serverId}`, "--read-only=1", "--relay-log=relay-bin", ...binlog, "--log-slave-updates=1", ...semiSync];
  }
}

const password = (): string => randomBytes(18).toString("base64url");

function mysqlUrl(user: string, secret: string, port: number): string {
  return `mysql://${encodeURIComponent(user)}:${encodeURIComponent(secret)}@127.0.0.1:${port}`;
}

interface SlaveStatus {
  Slave_IO_Running: string;
  Slave_SQL_Running: string;
  Last_IO_Error: string;
  Last_SQL_Error: string;
}

async function describeReplication(replica: MariaDbServer): Promise<string> {
  try {
    const [status] = await replica.query<SlaveStatus>("SHOW SLAVE STATUS");
    if (status === undefined) return "replication is not configured";
    const errors = [status.Last_IO_Error, status.Last_SQL_Error].filter((text) => text !== "");
    return `IO thread ${status.Slave_IO_Running}, SQL thread ${status.Slave_SQL_Running}${
      errors.length > 0 ? `, errors: ${errors.join("; ")}` : ""
    }`;
  } catch (error) {
    return `status unavailable: ${(error as Error).message}`;
  }
}

export async function startMariaDbReplicationSet(options: MariaDbReplicationSetOptions): Promise<MariaDbReplicationSet> {
  const replicaCount = options.replicas;
  if (!Number.isInteger(replicaCount) || replicaCount < 0 || replicaCount > MAX_REPLICAS) {
    throw new Error(`replicas must be an integer from 0 to ${MAX_REPLICAS}, got ${replicaCount}`);
  }
  const baseDir = options.baseDir ?? os.tmpdir();
  const templateDir = options.templateDir ?? process.env.SHOAL_TEST_MARIADB_TEMPLATE ?? (await templateForThisProcess());
  if (!fs.existsSync(path.join(templateDir, "mysql"))) {
    throw new Error(`${templateDir} is not a MariaDB datadir made by prepareMariaDbTemplate()`);
  }

  const setDir = await fs.promises.mkdtemp(path.join(baseDir, "shoal-mariadb-"));
  deleteDirectoryWhenProcessEnds(setDir);
  await makeTraversable(setDir);

  const semiSync = options.semiSync ?? false;
  const primary = new MariaDbInstance("primary", path.join(setDir, "primary"), { kind: "primary", semiSync });
  const replicas = Array.from(
    { length: replicaCount },
    (_, index) => new MariaDbInstance(`replica-${index + 1}`, path.join(setDir, `replica-${index + 1}`), {
      kind: "replica",
      serverId: index + 2,
      semiSync,
    }),
  );
  const all = [primary, ...replicas];
  const stopAll = async (): Promise<void> => {
    await Promise.all(all.map((server) => server.stop()));
    await removeDirectory(setDir);
  };

  const appPassword = password();
  const replicationPassword = password();
  const adminPassword = password();

  const replica = (index: number): MariaDbServer => {
    const server = replicas[index];
    if (server === undefined) throw new Error(`no replica ${index} (the set has ${replicas.length})`);
    return server;
  };

  const waitForReplicaCatchUp = async (index: number, timeoutMs = 10_000): Promise<void> => {
    const server = replica(index);
    const [binlog] = await primary.query<{ position: string }>("SELECT @@gtid_binlog_pos AS position");
    const position = binlog?.position ?? "";
    const [wait] = await server.query<{ result: number | null }>("SELECT MASTER_GTID_WAIT(?, ?) AS result", [
      position,
      timeoutMs / 1000,
    ]);
    if (wait?.result !== 0) {
      throw new Error(
        `${server.name} did not reach the primary's GTID position "${position}" within ${timeoutMs} ms (${await describeReplication(server)})`,
      );
    }
  };

  try {
    // Starting the servers dominates; run them side by side.
    await Promise.all(all.map((server) => server.create(templateDir)));

    // Created on the primary before any replica replicates from the empty GTID position, so the
    // replicas receive these statements too.
    await primary.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?", [REPLICATION_USER, replicationPassword]);
    await primary.query("GRANT REPLICATION SLAVE ON *.* TO ?@'127.0.0.1'", [REPLICATION_USER]);
    await primary.query("CREATE USER ?@'%' IDENTIFIED BY ?", [APP_USER, appPassword]);
    await primary.query("GRANT ALL PRIVILEGES ON `shoal\\_%`.* TO ?@'%'", [APP_USER]);
    await primary.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?", [ADMIN_USER, adminPassword]);
    await primary.query("GRANT ALL PRIVILEGES ON *.* TO ?@'127.0.0.1'", [ADMIN_USER]);

    await Promise.all(
      replicas.map(async (server, index) => {
        await server.query(
          "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER=?, MASTER_PASSWORD=?, " +
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
          [primary.port, REPLICATION_USER, replicationPassword],
        );
        await server.query("START SLAVE");
        await waitForReplicaCatchUp(index, 30_000);
      }),
    );
  } catch (error) {
    await Promise.all(all.map((server) => server.stop().catch(() => undefined)));
    await removeDirectory(setDir).catch(() => undefined);
    throw error;
  }

  return {
    primary,
    replicas,
    primaryUrl: mysqlUrl(APP_USER, appPassword, primary.port),
    adminUser: ADMIN_USER,
    adminPassword,
    replicaUrls: replicas.map((server) => mysqlUrl(APP_USER, appPassword, server.port)),
    stopReplicaSqlThread: async (index) => {
      await replica(index).query("STOP SLAVE SQL_THREAD");
    },
    startReplicaSqlThread: async (index) => {
      await replica(index).query("START SLAVE SQL_THREAD");
    },
    waitForReplicaCatchUp,
    stop: stopAll,
  };
}

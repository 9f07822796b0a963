import mysql from "mysql2/promise";
import type { Connection, RowDataPacket } from "mysql2/promise";
import type { PromotionPort, ReplicaState } from "./promotion";

export interface AdminCredentials {
  readonly user: string;
  readonly password: string;
}

export interface MariaDbPromotionOptions {
  readonly credentials: AdminCredentials;
  /** Semi-synchronous replication: the new primary waits for a replica's acknowledgement, the replicas give it. */
  readonly semiSync: boolean;
  readonly connectTimeoutMs?: number;
}

interface SlaveStatusRow extends RowDataPacket {
  Slave_IO_Running: string;
  Slave_SQL_Running: string;
  Gtid_IO_Pos: string;
  Last_SQL_Error: string;
}

function hostAndPort(server: string): { host: string; port: number } {
  const separator = server.lastIndexOf(":");
  return { host: server.slice(0, separator), port: Number(server.slice(separator + 1)) };
}

/** PromotionPort for MariaDB 10.5+ (GTID, MASTER_GTID_WAIT, built-in semi-sync), as a user with SUPER or the admin privileges. */
export class MariaDbPromotionPort implements PromotionPort {
  constructor(private readonly options: MariaDbPromotionOptions) {}

  async inspect(server: string): Promise<ReplicaState> {
    try {
      return await this.on(server, async (connection) => {
        const [version] = await connection.query<RowDataPacket[]>("SELECT VERSION() AS version");
        if (!/mariadb/i.test(String(version[0]?.version))) {
          throw new Error("promotion supports MariaDB only; on MySQL use orchestrator or MySQL Shell");
        }
        const [statusRows] = await connection.query<SlaveStatusRow[]>("SHOW SLAVE STATUS");
        const [positions] = await connection.query<RowDataPacket[]>("SELECT @@global.gtid_slave_pos AS applied");
        const status = statusRows[0];
        return {
          server,
          reachable: true,
          ioRunning: status?.Slave_IO_Running === "Yes",
          sqlRunning: status?.Slave_SQL_Running === "Yes",
          receivedPosition: status?.Gtid_IO_Pos ?? "",
          appliedPosition: String(positions[0]?.applied ?? ""),
          lastSqlError: status?.Last_SQL_Error ?? "",
        };
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return { server, reachable: false, error: message, ioRunning: false, sqlRunning: false, receivedPosition: "", appliedPosition: "", lastSqlError: "" };
    }
  }

  waitForApplied(server: string, position: string, timeoutMs: number): Promise<boolean> {
    return this.on(server, async (connection) => {
      const [rows] = await connection.query<RowDataPacket[]>("SELECT MASTER_GTID_WAIT(?, ?) AS result", [position, timeoutMs / 1000]);
      return Number(rows[0]?.result) === 0;
    });
  }

  detach(server: string): Promise<void> {
    return this.on(server, async (connection) => {
      await connection.query("STOP SLAVE");
      await connection.query("RESET SLAVE ALL");
    });
  }

  makeWritable(server: string): Promise<void> {
    return this.on(server, async (connection) => {
      if (this.options.semiSync) {
        await connection.query("SET GLOBAL rpl_semi_sync_slave_enabled = OFF");
        await connection.query("SET GLOBAL rpl_semi_sync_master_enabled = ON");
      }
      await connection.query("SET GLOBAL read_only = OFF");
    });
  }

  replicateFrom(server: string, primary: string): Promise<void> {
    const { host, port } = hostAndPort(primary);
    return this.on(server, async (connection) => {
      await connection.query("STOP SLAVE");
      // Options left out keep their values: the replication user and password stay as they were.
      await connection.query("CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USE_GTID = slave_pos", [host, port]);
      if (this.options.semiSync) await connection.query("SET GLOBAL rpl_semi_sync_slave_enabled = ON");
      await connection.query("SET GLOBAL read_only = ON");
      await connection.query("START SLAVE");
    });
  }

  private async on<T>(server: string, work: (connection: Connection) => Promise<T>): Promise<T> {
    const { host, port } = hostAndPort(server);
    const connection = await mysql.createConnection({
      host,
      port,
      user: this.options.credentials.user,
      password: this.options.credentials.password,
      connectTimeout: this.options.connectTimeoutMs ?? 3000,
    });
    try {
      return await work(connection);
    } finally {
      connection.destroy();
    }
  }
}

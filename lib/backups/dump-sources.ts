import { sql } from "kysely";
import type { DatabaseName, DatabaseSettings } from "../../config/settings";
import { flavorFromVersion } from "../db/replication-flavor";
import { openServer, serverLabel, startMysqlDump } from "./mysql-dump";
import { startSqliteDump } from "./sqlite-dump";
import type { SnapshotDump, StartDump } from "./take-backup";

/**
 * The server to dump from: the first replica that has applied everything the primary had committed when
 * asked, within the lag a replica may have and still serve reads; else the primary. A dump puts load and,
 * briefly, a read lock on its server, which the primary is spared whenever a replica can take it.
 */
export async function chooseDumpServer(primaryUrl: string, replicaUrls: readonly string[], maxLagSeconds: number): Promise<string> {
  if (replicaUrls.length === 0) return primaryUrl;
  const primary = openServer(primaryUrl, undefined, 1);
  let position: string;
  let version: string;
  try {
    version = (await sql<{ version: string }>`select version() as version`.execute(primary)).rows[0]?.version ?? "";
    position = await flavorFromVersion(version).serverPosition(primary);
  } finally {
    await primary.destroy();
  }
  for (const url of replicaUrls) {
    const replica = openServer(url, undefined, 1);
    try {
      if (await flavorFromVersion(version).waitForPosition(replica, position, maxLagSeconds * 1000)) return url;
    } catch {
      // unreachable or not replicating: not a candidate
    } finally {
      await replica.destroy();
    }
  }
  return primaryUrl;
}

async function mysqlSnapshotDump(url: string, database: string): Promise<SnapshotDump> {
  const dump = await startMysqlDump({ url }, database);
  return {
    data: dump.sql,
    engine: dump.flavor.name,
    source: serverLabel(url),
    serverVersion: dump.serverVersion,
    gtidPosition: dump.gtidPosition,
    summary: dump.summary,
    finished: dump.finished,
  };
}

export interface AdminAccount {
  readonly user: string | undefined;
  readonly password: string | undefined;
}

/** The server URL with the admin account's credentials when one is set (a dump's read lock needs RELOAD, which the application's account may lack). */
export function withAccount(url: string, account: AdminAccount): string {
  if (account.user === undefined) return url;
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(account.user);
  parsed.password = encodeURIComponent(account.password ?? "");
  return parsed.toString();
}

/** How each configured database is dumped: SQLite through its backup API, MariaDB/MySQL from a replica or the primary. */
export function dumpsFor(databases: Readonly<Record<DatabaseName, DatabaseSettings>>, maxLagSeconds: number, account: AdminAccount): StartDump {
  return async (name) => {
    const settings = databases[name];
    if (settings.kind === "sqlite") return startSqliteDump(settings.file);
    const url = await chooseDumpServer(
      withAccount(settings.primaryUrl, account),
      settings.replicaUrls.map((replica) => withAccount(replica, account)),
      maxLagSeconds,
    );
    return mysqlSnapshotDump(url, settings.database);
  };
}

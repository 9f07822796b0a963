import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { finished } from "node:stream/promises";
import SqliteDriver from "better-sqlite3";
import type { SnapshotDump } from "./take-backup";
import { summariseSqliteFile } from "./table-checksums";

/**
 * A consistent copy of a live SQLite file through SQLite's online backup API, which writes pages to a copy
 * while the application goes on writing. The copy is a private temporary file (SQLite's API needs a file to
 * write to); it is summarised, streamed out and deleted.
 */
export async function startSqliteDump(file: string): Promise<SnapshotDump> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-backup-"));
  const copy = path.join(dir, "copy.sqlite");
  try {
    const source = new SqliteDriver(file, { readonly: true, fileMustExist: true });
    let serverVersion: string;
    try {
      serverVersion = `SQLite ${(source.prepare("select sqlite_version() as v").get() as { v: string }).v}`;
      await source.backup(copy);
    } finally {
      source.close();
    }
    const summary = summariseSqliteFile(copy);
    const data = fs.createReadStream(copy);
    const done = finished(data).finally(() => fs.promises.rm(dir, { recursive: true, force: true }));
    done.catch(() => undefined);
    return {
      data,
      engine: "sqlite",
      source: path.basename(file),
      serverVersion,
      gtidPosition: "",
      summary: Promise.resolve(summary),
      finished: done,
    };
  } catch (error) {
    await fs.promises.rm(dir, { recursive: true, force: true });
    throw error;
  }
}

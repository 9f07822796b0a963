import "dotenv/config";
import { parseSettings, SettingsError } from "../config/settings";
import { backupStorageFor } from "../lib/backups/backup-setup";
import { parseRestoreArguments, readBackupKey, RESTORE_USAGE, RestoreUsageError, runRestore } from "../lib/backups/restore-command";
import { RestoreRefusedError } from "../lib/backups/restore";
import { mediaFilesRestore } from "../lib/backups/object-files";
import { MissingBinlogSpanError, pointInTimeRestores } from "../lib/backups/point-in-time";
import { LocalStorage } from "../lib/storage/local-storage";
import type { ObjectStorage } from "../lib/storage/object-storage";
import { S3Storage } from "../lib/storage/s3-storage";
import { UrlSigner } from "../lib/storage/signed-url";

/** Restores one database from its backups: see RESTORE_USAGE and the README's runbook. */
async function main(): Promise<void> {
  const settings = parseSettings(process.env);
  const request = parseRestoreArguments(process.argv.slice(2), settings);
  const key = readBackupKey(settings);
  // Nothing is signed here; the signer only completes the local store.
  const signer = new UrlSigner("restore-command-does-not-sign-urls");
  const media: ObjectStorage = settings.storage.kind === "s3" ? new S3Storage(settings.storage) : new LocalStorage(settings.storage.dir, signer);
  const { storage } = backupStorageFor(settings, media, "restore-command-does-not-sign-urls");
  try {
    const print = (line: string): void => console.error(line);
    const sourceDatabase = (database: keyof typeof settings.databases): string => {
      const configured = settings.databases[database];
      return configured.kind === "mysql" ? configured.database : `shoal_${database}`;
    };
    const replay = settings.mode === "cluster" ? pointInTimeRestores({ storage, key, sourceDatabase, print }) : undefined;
    const restoreFiles = mediaFilesRestore({ backups: storage, key, media, target: request.target, localStore: (dir) => new LocalStorage(dir, signer) });
    // The site database may be the one restored, and the nodes are stopped: the restore's audit event is logged here, as JSON.
    const audit = async (action: string, detail: Record<string, unknown>): Promise<void> =>
      console.error(JSON.stringify({ audit: action, at: new Date().toISOString(), actor: process.env.USER ?? null, ...detail }));
    await runRestore(request, { storage, key, print, audit, ...(replay ? { replay } : {}), ...(restoreFiles ? { restoreFiles } : {}) });
  } finally {
    await storage.close();
    await media.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  if (error instanceof RestoreUsageError) console.error(`usage: ${RESTORE_USAGE}`);
  process.exit(error instanceof SettingsError || error instanceof RestoreUsageError ? 2 : error instanceof RestoreRefusedError || error instanceof MissingBinlogSpanError ? 3 : 1);
});

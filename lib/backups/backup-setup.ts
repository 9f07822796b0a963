import type { DatabaseName, Settings } from "../../config/settings";
import { LocalStorage } from "../storage/local-storage";
import type { ObjectStorage } from "../storage/object-storage";
import { S3Storage } from "../storage/s3-storage";
import { UrlSigner } from "../storage/signed-url";
import type { DrillScratch } from "./drill";
import { dumpsFor, withAccount } from "./dump-sources";
import type { StartDump } from "./take-backup";

/** Where backups go: BACKUP_S3_BUCKET, else the media bucket (under backups/); BACKUP_DIR for local storage. */
export function backupStorageFor(settings: Settings, mediaStorage: ObjectStorage, secret: string): { storage: ObjectStorage; own: boolean } {
  const { storage } = settings;
  if (storage.kind === "s3") {
    const bucket = settings.backups.s3Bucket;
    return bucket === undefined ? { storage: mediaStorage, own: false } : { storage: new S3Storage({ ...storage, bucket }), own: true };
  }
  return { storage: new LocalStorage(settings.backups.dir, new UrlSigner(secret)), own: true };
}

const adminAccount = (settings: Settings) => ({ user: settings.failover.adminUser, password: settings.failover.adminPassword });

export function dumpsFromSettings(settings: Settings): StartDump {
  return dumpsFor(settings.databases, settings.replication.maxLagSeconds, adminAccount(settings));
}

/** A drill's scratch space: a temporary SQLite file, or a scratch database on BACKUP_DRILL_MYSQL_URL (default: the database's primary). */
export function drillScratchFor(settings: Settings): (database: DatabaseName) => DrillScratch {
  return (database) => {
    const configured = settings.databases[database];
    if (configured.kind === "sqlite") return { kind: "sqlite" };
    return { kind: "mysql", url: settings.backups.drillMysqlUrl ?? withAccount(configured.primaryUrl, adminAccount(settings)) };
  };
}

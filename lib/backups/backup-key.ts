import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parseBackupKey } from "./encryption";

export type BackupKey =
  | { readonly kind: "configured"; readonly key: Buffer }
  /** Embedded mode without BACKUP_ENCRYPTION_KEY: made once in the data directory. */
  | { readonly kind: "data-directory"; readonly key: Buffer; readonly file: string }
  /** Cluster mode without BACKUP_ENCRYPTION_KEY: backups refuse to run. */
  | { readonly kind: "missing" };

/** The file name of the key an embedded node makes for itself. */
export const BACKUP_KEY_FILE = "backup.key";

/** The embedded node's backup key when none is set: made once, owner-only, like the signing secret. */
export function loadOrCreateBackupKey(dataDir: string): { key: Buffer; file: string } {
  const file = path.join(dataDir, BACKUP_KEY_FILE);
  try {
    return { key: parseBackupKey(fs.readFileSync(file, "utf8")), file };
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
  }
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    fs.writeFileSync(file, randomBytes(32).toString("base64"), { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") throw error;
  }
  return { key: parseBackupKey(fs.readFileSync(file, "utf8")), file };
}

export function resolveBackupKey(mode: "embedded" | "cluster", configured: string | undefined, dataDir: string): BackupKey {
  if (configured !== undefined) return { kind: "configured", key: parseBackupKey(configured) };
  if (mode === "cluster") return { kind: "missing" };
  return { kind: "data-directory", ...loadOrCreateBackupKey(dataDir) };
}

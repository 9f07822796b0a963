import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { ObjectStorage } from "../storage/object-storage";
import { compareBinlogNames } from "./binlog-archiver";
import type { ArchiveSink } from "./binlog-archiver";
import { storeEncrypted } from "./backup-files";
import { DecryptStream } from "./encryption";

/** Archived binary logs as files in a directory; each put replaces the file whole (written beside it, then renamed). */
export function directoryArchiveSink(directory: string): ArchiveSink {
  return {
    async put(name, body) {
      if (path.basename(name) !== name) throw new Error(`"${name}" is not a plain file name`);
      await fs.promises.mkdir(directory, { recursive: true, mode: 0o700 });
      const target = path.join(directory, name);
      await pipeline(body, fs.createWriteStream(`${target}.partial`, { mode: 0o600 }));
      await fs.promises.rename(`${target}.partial`, target);
    },
  };
}

/**
 * Archived binary logs as objects under `prefix` (one prefix per primary, e.g. "backups/binlog/<server>/"),
 * compressed and encrypted as the dumps are (AES-256-GCM in authenticated chunks, with the backup key).
 */
export function encryptedArchiveSink(storage: ObjectStorage, prefix: string, key: Buffer): ArchiveSink {
  return {
    async put(name, body) {
      await storeEncrypted(storage, `${prefix}${name}`, body, key);
    },
  };
}

/** The names of the binary logs archived under `prefix`, in order. */
export async function listArchivedBinlogs(storage: ObjectStorage, prefix: string): Promise<string[]> {
  const objects = await storage.list(prefix);
  return objects
    .map((object) => object.key.slice(prefix.length))
    .filter((name) => /^[A-Za-z0-9_-]+\.\d{6,}$/.test(name))
    .sort(compareBinlogNames);
}

/** Decrypts archived binary logs into `directory` for a replay; answers their paths, in order. A file that fails authentication is refused. */
export async function fetchArchivedBinlogs(storage: ObjectStorage, prefix: string, names: readonly string[], key: Buffer, directory: string): Promise<string[]> {
  await fs.promises.mkdir(directory, { recursive: true, mode: 0o700 });
  const files: string[] = [];
  for (const name of [...names].sort(compareBinlogNames)) {
    const target = path.join(directory, path.basename(name));
    const { body } = await storage.get(`${prefix}${name}`);
    await pipeline(body, new DecryptStream(key), createGunzip(), fs.createWriteStream(target, { mode: 0o600 }));
    files.push(target);
  }
  return files;
}

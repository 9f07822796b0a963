import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { ObjectStorage } from "../storage/object-storage";
import type { ArchiveSink } from "./binlog-archiver";

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

/** Archived binary logs as objects under `prefix` (unencrypted: the backup service wraps a sink that encrypts). */
export function objectStorageArchiveSink(storage: ObjectStorage, prefix: string): ArchiveSink {
  return {
    async put(name, body) {
      await storage.put(`${prefix}${name}`, body, "application/octet-stream");
    },
  };
}

import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Dirent, Stats } from "node:fs";
import fs from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { NotFoundError } from "../errors";
import type { CheckResult } from "../health";
import { flushWhileWriting } from "./background-flush";
import type { ByteRange, ObjectInfo, ObjectStorage, SignedUrlOptions, StagedContent, StoredObject } from "./object-storage";
import type { UrlSigner } from "./signed-url";
import {
  assertContentType,
  assertObjectKey,
  assertObjectPrefix,
  contentTypeForKey,
  InvalidObjectKeyError,
  isValidContentType,
  isValidObjectKey,
  resolveRange,
} from "./storage-rules";

/**
 * A strong validator from size and modification time (to the microsecond). Every put writes a new file
 * and renames it into place, so a change of content is a change of mtime. The file server computes the
 * same from the same stat, so the ETag it sends equals head()'s.
 */
export function localEtag(stat: Pick<Stats, "size" | "mtimeMs">): string {
  return `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs * 1000).toString(16)}"`;
}

/** Bytes on their way to disk per write stream: with the 16 KiB default each read from a socket waits for the previous write. */
const WRITE_BUFFER_BYTES = 1024 * 1024;
/** How often a body being stored is flushed to disk while it streams in. */
const FLUSH_INTERVAL_MS = 250;

function errorCode(error: unknown): string | undefined {
  return (error as { code?: unknown } | null)?.code as string | undefined;
}

const MISSING = new Set(["ENOENT", "ENOTDIR"]);

async function ignoreMissing(operation: Promise<unknown>, alsoIgnore: readonly string[] = []): Promise<void> {
  try {
    await operation;
  } catch (error) {
    const code = errorCode(error);
    if (code === undefined || (!MISSING.has(code) && !alsoIgnore.includes(code))) throw error;
  }
}

/** Sidecar of `dir/name`: a dot-file, so that listings skip it and no valid key can name it. */
function metadataFile(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.meta.json`);
}

function temporaryFile(file: string, suffix: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(8).toString("hex")}${suffix}`);
}

interface Metadata {
  readonly contentType: string;
}

/**
 * Objects as files under one directory (embedded mode): `<dir>/<key>`, with the content type in a
 * sidecar `.<name>.meta.json` next to each file. Signed URLs point at the file server
 * (lib/http/file-server.ts), which serves these files.
 */
export class LocalStorage implements ObjectStorage {
  readonly kind = "local";
  /** Absolute, so that a later chdir cannot move it. */
  readonly directory: string;

  constructor(
    dir: string,
    private readonly urlSigner: UrlSigner,
  ) {
    this.directory = path.resolve(dir);
  }

  /** The file that holds a key's bytes; throws InvalidObjectKeyError for a key that could leave the directory. */
  filePath(key: string): string {
    assertObjectKey(key);
    const file = path.join(this.directory, ...key.split("/"));
    // Belt and braces: the key rules already exclude every way out.
    if (!file.startsWith(this.directory + path.sep)) throw new InvalidObjectKeyError("key", key);
    return file;
  }

  /** The type given at put() time, else the one its extension implies. */
  async contentTypeOf(key: string): Promise<string> {
    return (await this.readMetadata(this.filePath(key)))?.contentType ?? contentTypeForKey(key);
  }

  async put(key: string, body: Readable, contentType: string): Promise<ObjectInfo> {
    let file: string;
    try {
      file = this.filePath(key);
      assertContentType(contentType);
    } catch (error) {
      body.destroy();
      throw error;
    }
    const temporary = temporaryFile(file, ".tmp");
    const metadataTemporary = temporaryFile(file, ".meta.tmp");
    try {
      const handle = await this.createExclusive(temporary);
      // The stream owns the handle and closes it, also on error. flush: fsync before closing, so that the
      // bytes are on disk before the rename and a crash cannot leave a renamed but empty or partial file.
      // A long body is flushed as it arrives too, so that final fsync finds little left to write.
      const stopFlushing = flushWhileWriting(temporary, FLUSH_INTERVAL_MS);
      try {
        await pipeline(body, handle.createWriteStream({ flush: true, highWaterMark: WRITE_BUFFER_BYTES }));
      } finally {
        stopFlushing();
      }
      const stat = await fs.stat(temporary);
      // Metadata first: when the object appears under its name, its content type is already there.
      const metadata: Metadata = { contentType };
      await fs.writeFile(metadataTemporary, JSON.stringify(metadata), { flag: "wx" });
      await fs.rename(metadataTemporary, metadataFile(file));
      await fs.rename(temporary, file);
      // rename() keeps the inode and its mtime, so the stat taken before it describes the object now in place.
      return { key, bytes: stat.size, contentType, etag: localEtag(stat), lastModified: stat.mtime };
    } catch (error) {
      body.destroy();
      await Promise.all([ignoreMissing(fs.unlink(temporary)), ignoreMissing(fs.unlink(metadataTemporary))]).catch(() => undefined);
      await this.pruneEmptyDirectories(path.dirname(file));
      throw error;
    }
  }

  /**
   * Moves a staged file into place by renaming it, so its bytes are not copied. They are flushed to disk
   * first, as put() does. A staged file on another file system is copied instead.
   */
  async adopt(staged: StagedContent, key: string, contentType: string): Promise<ObjectInfo> {
    if (staged.kind !== "file") throw new TypeError("local storage adopts staged files only");
    const file = this.filePath(key);
    assertContentType(contentType);
    const handle = await fs.open(staged.path, "r+");
    try {
      await handle.datasync();
    } finally {
      await handle.close();
    }
    const metadataTemporary = temporaryFile(file, ".meta.tmp");
    try {
      await fs.mkdir(path.dirname(file), { recursive: true });
      const metadata: Metadata = { contentType };
      await fs.writeFile(metadataTemporary, JSON.stringify(metadata), { flag: "wx" });
      await fs.rename(metadataTemporary, metadataFile(file));
      try {
        await fs.rename(staged.path, file);
      } catch (error) {
        if (errorCode(error) !== "EXDEV") throw error;
        const info = await this.put(key, createReadStream(staged.path), contentType);
        await fs.unlink(staged.path);
        return info;
      }
      const stat = await fs.stat(file);
      return { key, bytes: stat.size, contentType, etag: localEtag(stat), lastModified: stat.mtime };
    } catch (error) {
      await ignoreMissing(fs.unlink(metadataTemporary)).catch(() => undefined);
      // Metadata for an object that did not arrive (keys adopted into are new, so nothing else owns it).
      if ((await this.statFile(file).catch(() => undefined)) === undefined) await this.deleteFile(file).catch(() => undefined);
      await this.pruneEmptyDirectories(path.dirname(file));
      throw error;
    }
  }

  /** The body holds the file open until it is read to the end or destroyed: callers must do one or the other. */
  async get(key: string, range?: ByteRange): Promise<StoredObject> {
    const file = this.filePath(key);
    let handle: FileHandle;
    try {
      handle = await fs.open(file, "r");
    } catch (error) {
      if (MISSING.has(errorCode(error) ?? "")) throw new NotFoundError("file");
      throw error;
    }
    try {
      // From the open file, so that info and bytes describe the same version even if a put replaces it meanwhile.
      const stat = await handle.stat();
      if (!stat.isFile()) throw new NotFoundError("file");
      const info = await this.infoOf(key, file, stat);
      const bounds = range === undefined ? undefined : resolveRange(range, stat.size);
      // The stream owns the handle from here: it closes it at the end, on error, or when destroyed.
      const body = handle.createReadStream(bounds === undefined ? {} : { start: bounds.start, end: bounds.end });
      return { info, body };
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const file = this.filePath(key);
    const stat = await this.statFile(file);
    return stat === undefined ? undefined : this.infoOf(key, file, stat);
  }

  async delete(key: string): Promise<void> {
    const file = this.filePath(key);
    await this.deleteFile(file);
    await this.pruneEmptyDirectories(path.dirname(file));
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const infos: ObjectInfo[] = [];
    for (const key of await this.listKeys(prefix)) {
      const file = this.filePath(key);
      const stat = await this.statFile(file);
      // Deleted since the directory was read.
      if (stat !== undefined) infos.push(await this.infoOf(key, file, stat));
    }
    return infos;
  }

  async deletePrefix(prefix: string): Promise<number> {
    // An empty prefix would be everything: far more likely a bug upstream than an intent.
    if (prefix === "") throw new InvalidObjectKeyError("prefix", prefix);
    const keys = await this.listKeys(prefix);
    const directories = new Set<string>();
    for (const key of keys) {
      const file = this.filePath(key);
      await this.deleteFile(file);
      directories.add(path.dirname(file));
    }
    // Deepest first, so that a parent is tried after its children are gone.
    for (const dir of [...directories].sort((a, b) => b.length - a.length)) await this.pruneEmptyDirectories(dir);
    return keys.length;
  }

  async signedUrl(key: string, options: SignedUrlOptions): Promise<string> {
    assertObjectKey(key);
    return this.urlSigner.sign(key, options);
  }

  async check(): Promise<CheckResult> {
    try {
      await fs.mkdir(this.directory, { recursive: true });
      await fs.access(this.directory, fs.constants.R_OK | fs.constants.W_OK);
      return { status: "ok", kind: this.kind };
    } catch (error) {
      return { status: "down", kind: this.kind, error: error instanceof Error ? error.message : String(error) };
    }
  }

  async close(): Promise<void> {}

  private async infoOf(key: string, file: string, stat: Stats): Promise<ObjectInfo> {
    const contentType = (await this.readMetadata(file))?.contentType ?? contentTypeForKey(key);
    return { key, bytes: stat.size, contentType, etag: localEtag(stat), lastModified: stat.mtime };
  }

  private async readMetadata(file: string): Promise<Metadata | undefined> {
    try {
      const parsed = JSON.parse(await fs.readFile(metadataFile(file), "utf8")) as Partial<Metadata>;
      if (typeof parsed.contentType === "string" && isValidContentType(parsed.contentType)) return { contentType: parsed.contentType };
      return undefined;
    } catch {
      // Missing or unreadable metadata is not fatal: the extension still says what the file is.
      return undefined;
    }
  }

  private async statFile(file: string): Promise<Stats | undefined> {
    try {
      const stat = await fs.stat(file);
      return stat.isFile() ? stat : undefined;
    } catch (error) {
      if (MISSING.has(errorCode(error) ?? "")) return undefined;
      throw error;
    }
  }

  private async deleteFile(file: string): Promise<void> {
    // EISDIR: the "key" is a directory of other keys, which is no object (as in S3).
    await ignoreMissing(fs.unlink(file), ["EISDIR"]);
    await ignoreMissing(fs.unlink(metadataFile(file)));
  }

  /**
   * Opens a new file for writing, making its directory. A delete elsewhere may remove that directory
   * between the two steps (pruneEmptyDirectories), so ENOENT is retried a few times.
   */
  private async createExclusive(file: string): Promise<FileHandle> {
    for (let attempt = 1; ; attempt += 1) {
      await fs.mkdir(path.dirname(file), { recursive: true });
      try {
        return await fs.open(file, "wx");
      } catch (error) {
        if (errorCode(error) !== "ENOENT" || attempt >= 5) throw error;
      }
    }
  }

  /** Removes `dir` and its parents while they are empty, up to (not including) the storage directory. */
  private async pruneEmptyDirectories(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(this.directory + path.sep)) {
      try {
        await fs.rmdir(current);
      } catch {
        // Not empty (or already gone, or in use): the usual end of the walk.
        return;
      }
      current = path.dirname(current);
    }
  }

  /** Keys under the prefix, sorted as S3 lists them (byte order; keys are ASCII). */
  private async listKeys(prefix: string): Promise<string[]> {
    assertObjectPrefix(prefix);
    const wholeSegments = prefix.split("/").slice(0, -1);
    const keys: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (error) {
        if (MISSING.has(errorCode(error) ?? "")) return;
        throw error;
      }
      for (const entry of entries) {
        // Dot-files are temporary files and metadata; symbolic links are not followed out of the tree.
        if (entry.name.startsWith(".")) continue;
        const key = keyPrefix + entry.name;
        if (entry.isDirectory()) {
          if ((key + "/").startsWith(prefix) || prefix.startsWith(key + "/")) await walk(path.join(dir, entry.name), key + "/");
        } else if (entry.isFile() && key.startsWith(prefix) && isValidObjectKey(key)) {
          keys.push(key);
        }
      }
    };
    await walk(path.join(this.directory, ...wholeSegments), wholeSegments.map((segment) => segment + "/").join(""));
    return keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

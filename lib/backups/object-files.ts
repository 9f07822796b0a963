import { createHash } from "node:crypto";
import path from "node:path";
import { PassThrough, Readable, Transform, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import type { ObjectStorage } from "../storage/object-storage";
import { storeEncrypted } from "./backup-files";
import { DecryptStream } from "./encryption";

/**
 * The media files of a local store (embedded mode), copied to the backup target by content: each distinct
 * content is stored once, encrypted like the dumps, under its SHA-256; each media backup stores an index
 * (encrypted too) from the object keys it had to their content hashes. An unchanged file is never copied
 * again: a file whose size and ETag the previous index records keeps its hash without being read, and a
 * hash already stored is not stored twice.
 */

/** Where the media files are, relative to the store: every media object key starts with it. */
export const MEDIA_OBJECTS_PREFIX = "media/";
const INDEX_PREFIX = "backups/objects/index/";
const CONTENT_PREFIX = "backups/objects/sha256/";

export interface ObjectIndexEntry {
  readonly sha256: string;
  readonly bytes: number;
  readonly contentType: string;
  /** The source's ETag when the file was hashed (size and modification time in a local store). */
  readonly etag: string;
}

export interface ObjectIndex {
  readonly formatVersion: 1;
  /** The media database backup this index goes with. */
  readonly backupId: string;
  readonly takenAt: string;
  readonly objects: Readonly<Record<string, ObjectIndexEntry>>;
}

export interface ObjectBackupResult {
  readonly index: ObjectIndex;
  /** Files whose content was stored by this backup. */
  readonly copied: number;
  readonly copiedBytes: number;
  /** Files whose content was stored already. */
  readonly unchanged: number;
}

export const objectIndexKey = (backupId: string): string => `${INDEX_PREFIX}${backupId}.index`;
export const objectContentKey = (sha256: string): string => `${CONTENT_PREFIX}${sha256.slice(0, 2)}/${sha256}`;

/** Hashes what passes through. */
class Sha256 extends Transform {
  bytes = 0;
  private readonly hash = createHash("sha256");

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  digest(): string {
    return this.hash.digest("hex");
  }
}

/** The body with its bytes hashed on the way; a failing body fails the result. */
function hashing(body: Readable): { out: Readable; measure: Sha256 } {
  const measure = new Sha256();
  pipeline(body, measure, (error) => {
    if (error) measure.destroy(error);
  });
  return { out: measure, measure };
}

async function sha256Of(storage: ObjectStorage, key: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of (await storage.get(key)).body) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** A stored object's plaintext, decrypted and decompressed as it is read. */
function openEncrypted(body: Readable, key: Buffer): Readable {
  const out = new PassThrough();
  pipeline(body, new DecryptStream(key), createGunzip(), out, (error) => {
    if (error) out.destroy(error);
  });
  return out;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function loadObjectIndex(backups: ObjectStorage, key: Buffer, backupId: string): Promise<ObjectIndex> {
  const { body } = await backups.get(objectIndexKey(backupId));
  return JSON.parse((await readAll(openEncrypted(body, key))).toString("utf8")) as ObjectIndex;
}

/** The media backup ids that have an index, oldest first (ids sort by time). */
export async function objectIndexIds(backups: ObjectStorage): Promise<string[]> {
  const infos = await backups.list(INDEX_PREFIX);
  return infos.map((info) => info.key.slice(INDEX_PREFIX.length).replace(/\.index$/, "")).sort();
}

/**
 * Copies the source's media files that the backup target does not hold yet, and stores the index for
 * `backupId`. A file that changes while it is copied fails the backup (its partial content is removed).
 */
export async function backupObjects(options: {
  source: ObjectStorage;
  backups: ObjectStorage;
  key: Buffer;
  backupId: string;
  takenAt: string;
  onFile?: (copied: number, unchanged: number) => void;
}): Promise<ObjectBackupResult> {
  const { source, backups, key } = options;
  const previousId = (await objectIndexIds(backups)).filter((id) => id < options.backupId).pop();
  const previous = previousId === undefined ? undefined : await loadObjectIndex(backups, key, previousId);
  const stored = new Set(Object.values(previous?.objects ?? {}).map((entry) => entry.sha256));
  const objects: Record<string, ObjectIndexEntry> = {};
  let copied = 0;
  let copiedBytes = 0;
  let unchanged = 0;
  for (const info of await source.list(MEDIA_OBJECTS_PREFIX)) {
    const known = previous?.objects[info.key];
    const sha256 = known !== undefined && known.etag === info.etag && known.bytes === info.bytes ? known.sha256 : await sha256Of(source, info.key);
    const contentKey = objectContentKey(sha256);
    if (stored.has(sha256) || (await backups.head(contentKey)) !== undefined) {
      unchanged++;
    } else {
      const { out, measure } = hashing((await source.get(info.key)).body);
      await storeEncrypted(backups, contentKey, out, key);
      if (measure.digest() !== sha256) {
        await backups.delete(contentKey);
        throw new Error(`the media file ${info.key} changed while it was backed up`);
      }
      copied++;
      copiedBytes += measure.bytes;
    }
    stored.add(sha256);
    objects[info.key] = { sha256, bytes: info.bytes, contentType: info.contentType, etag: info.etag };
    options.onFile?.(copied, unchanged);
  }
  const index: ObjectIndex = { formatVersion: 1, backupId: options.backupId, takenAt: options.takenAt, objects };
  await storeEncrypted(backups, objectIndexKey(options.backupId), Readable.from([Buffer.from(JSON.stringify(index))]), key);
  return { index, copied, copiedBytes, unchanged };
}

/**
 * Puts back every file the index names into `destination`, each checked against its SHA-256 (a file that
 * does not match is removed again and the restore fails). Answers how many files and bytes.
 */
export async function restoreObjects(options: {
  backups: ObjectStorage;
  key: Buffer;
  backupId: string;
  destination: ObjectStorage;
  onFile?: (restored: number, total: number) => void;
}): Promise<{ files: number; bytes: number }> {
  const { backups, key, destination } = options;
  const index = await loadObjectIndex(backups, key, options.backupId);
  const entries = Object.entries(index.objects);
  let files = 0;
  let bytes = 0;
  for (const [objectKey, entry] of entries) {
    const { body } = await backups.get(objectContentKey(entry.sha256));
    const { out, measure } = hashing(openEncrypted(body, key));
    await destination.put(objectKey, out, entry.contentType);
    if (measure.digest() !== entry.sha256) {
      await destination.delete(objectKey);
      throw new Error(`the stored copy of ${objectKey} does not match its SHA-256`);
    }
    files++;
    bytes += measure.bytes;
    options.onFile?.(files, entries.length);
  }
  return { files, bytes };
}

/** Removes the indexes of media backups no longer kept, then every stored content no remaining index names; answers how many contents. */
export async function pruneObjects(backups: ObjectStorage, key: Buffer, keptBackupIds: ReadonlySet<string>): Promise<number> {
  const remaining: string[] = [];
  for (const id of await objectIndexIds(backups)) {
    if (keptBackupIds.has(id)) remaining.push(id);
    else await backups.delete(objectIndexKey(id));
  }
  const named = new Set<string>();
  for (const id of remaining) for (const entry of Object.values((await loadObjectIndex(backups, key, id)).objects)) named.add(entry.sha256);
  let removed = 0;
  for (const info of await backups.list(CONTENT_PREFIX)) {
    if (named.has(info.key.slice(info.key.lastIndexOf("/") + 1))) continue;
    await backups.delete(info.key);
    removed++;
  }
  return removed;
}

/** The media store whose files backups copy: a local one; an S3 bucket keeps its own (versioning, replication). */
export function mediaFilesToCopy(media: ObjectStorage): ObjectStorage | undefined {
  return media.kind === "local" ? media : undefined;
}

/**
 * `npm run restore --database media` into a data directory, with local media storage: puts the backup's files
 * back into that directory's objects/ (where a node started on it keeps them). Undefined otherwise (S3 keeps its own).
 */
export function mediaFilesRestore(options: {
  backups: ObjectStorage;
  key: Buffer;
  media: ObjectStorage;
  target: { readonly kind: "sqlite"; readonly file: string } | { readonly kind: "mysql" };
  localStore: (directory: string) => ObjectStorage;
}): ((manifest: { readonly id: string }) => Promise<string>) | undefined {
  const { target } = options;
  if (options.media.kind !== "local" || target.kind !== "sqlite") return undefined;
  const directory = path.join(path.dirname(target.file), "objects");
  return async (manifest) => {
    if (!(await objectIndexIds(options.backups)).includes(manifest.id)) return `backup ${manifest.id} has no media files stored with it`;
    const destination = options.localStore(directory);
    try {
      const { files, bytes } = await restoreObjects({ backups: options.backups, key: options.key, backupId: manifest.id, destination });
      return `restored ${files} media files (${bytes} bytes) into ${directory}, each matching its SHA-256`;
    } finally {
      await destination.close();
    }
  };
}

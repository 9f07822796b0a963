import { createHash } from "node:crypto";
import { PassThrough, Readable, Transform, pipeline } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";
import type { DatabaseName } from "../../config/settings";
import type { ObjectStorage } from "../storage/object-storage";
import { DecryptStream, EncryptStream } from "./encryption";
import { backupObjectKeys, readManifest } from "./manifest";
import type { BackupManifest } from "./manifest";

export type ByteProgress = (bytes: number) => void;

/** Counts and hashes what passes through. */
class Measure extends Transform {
  bytes = 0;
  private readonly hash = createHash("sha256");

  constructor(private readonly onProgress?: ByteProgress) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onProgress?.(this.bytes);
    callback(null, chunk);
  }

  digest(): string {
    return this.hash.digest("hex");
  }
}

/**
 * Compresses, encrypts and stores a stream under `key`, never holding it whole; answers the stored file's
 * SHA-256 and size, taken as the bytes pass, so nothing is read back. The store receives them as they come.
 */
export async function storeEncrypted(
  storage: ObjectStorage,
  objectKey: string,
  source: Readable,
  key: Buffer,
  onProgress?: ByteProgress,
): Promise<{ sha256: string; bytes: number }> {
  const measure = new Measure(onProgress);
  const body = pipeline(source, createGzip({ level: 6 }), new EncryptStream(key), measure, (error) => {
    if (error) measure.destroy(error);
  });
  await storage.put(objectKey, body, "application/octet-stream", { gradual: true });
  return { sha256: measure.digest(), bytes: measure.bytes };
}

/** Reads the stored file once and compares its SHA-256 and size with the manifest's, before anything is decrypted. */
export async function checkStoredFile(storage: ObjectStorage, manifest: BackupManifest, onProgress?: ByteProgress): Promise<void> {
  const { body } = await storage.get(manifest.objectKey);
  const measure = new Measure(onProgress);
  await new Promise<void>((resolve, reject) => {
    pipeline(body, measure, new PassThrough().resume(), (error) => (error ? reject(error) : resolve()));
  });
  const sha256 = measure.digest();
  if (measure.bytes !== manifest.bytes || sha256 !== manifest.sha256) {
    throw new Error(
      `backup ${manifest.id} does not match its manifest: ${measure.bytes} bytes with SHA-256 ${sha256.slice(0, 16)}…, expected ${manifest.bytes} bytes with ${manifest.sha256.slice(0, 16)}…`,
    );
  }
}

/** The backup's plaintext (SQL text, or a SQLite file's bytes), decrypted and decompressed as it is read. */
export async function openDecrypted(storage: ObjectStorage, manifest: BackupManifest, key: Buffer, onProgress?: ByteProgress): Promise<Readable> {
  const { body } = await storage.get(manifest.objectKey);
  const out = new PassThrough();
  pipeline(body, new Measure(onProgress), new DecryptStream(key), createGunzip(), out, (error) => {
    if (error) out.destroy(error);
  });
  return out;
}

export async function storeManifest(storage: ObjectStorage, manifest: BackupManifest): Promise<void> {
  const { manifest: manifestKey } = backupObjectKeys(manifest.database, manifest.id);
  await storage.put(manifestKey, Readable.from([Buffer.from(JSON.stringify(manifest, null, 2))]), "application/json");
}

async function readText(storage: ObjectStorage, objectKey: string): Promise<string> {
  const { body } = await storage.get(objectKey);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function loadManifest(storage: ObjectStorage, database: DatabaseName, id: string, key: Buffer): Promise<BackupManifest> {
  return readManifest(await readText(storage, backupObjectKeys(database, id).manifest), key);
}

/** Every stored backup of the database with a readable manifest, oldest first; unreadable ones are named in `unreadable`. */
export async function listManifests(
  storage: ObjectStorage,
  database: DatabaseName,
  key: Buffer,
): Promise<{ manifests: BackupManifest[]; unreadable: string[] }> {
  const objects = await storage.list(`backups/${database}/`);
  const manifests: BackupManifest[] = [];
  const unreadable: string[] = [];
  for (const object of objects.filter((info) => info.key.endsWith(".manifest.json"))) {
    try {
      manifests.push(readManifest(await readText(storage, object.key), key));
    } catch {
      unreadable.push(object.key);
    }
  }
  manifests.sort((a, b) => a.takenAt.localeCompare(b.takenAt) || a.id.localeCompare(b.id));
  return { manifests, unreadable };
}

export async function deleteBackupObjects(storage: ObjectStorage, database: DatabaseName, id: string): Promise<void> {
  const keys = backupObjectKeys(database, id);
  await storage.delete(keys.manifest);
  await storage.delete(keys.data);
}

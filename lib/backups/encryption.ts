import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { Transform } from "node:stream";
import type { TransformCallback } from "node:stream";

/**
 * The stored form of a backup: a header, then AES-256-GCM frames of at most CHUNK_BYTES plaintext each.
 *
 *   header: "SHOALBK" | version (1) | key id (8) | nonce prefix (7)
 *   frame:  flags (1) | ciphertext length (4, big-endian) | ciphertext | tag (16)
 *
 * A frame's nonce is the prefix, its index (4) and its final flag (1), and the header is its additional
 * data, so frames cannot be reordered, moved between files or dropped, and a file cut after any frame
 * lacks its final frame and is refused.
 */
const MAGIC = Buffer.from("SHOALBK", "ascii");
const VERSION = 1;
const KEY_ID_BYTES = 8;
const PREFIX_BYTES = 7;
export const HEADER_BYTES = MAGIC.length + 1 + KEY_ID_BYTES + PREFIX_BYTES;
const FRAME_HEAD_BYTES = 5;
const TAG_BYTES = 16;
const FINAL_FLAG = 1;
export const CHUNK_BYTES = 64 * 1024;

export class BackupDecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackupDecryptionError";
  }
}

/** Names a key without revealing it, so a file says which key it needs. */
export function keyId(key: Buffer): Buffer {
  return createHash("sha256").update("shoal backup key id").update(key).digest().subarray(0, KEY_ID_BYTES);
}

/** BACKUP_ENCRYPTION_KEY: 32 bytes, base64. */
export function parseBackupKey(encoded: string): Buffer {
  const key = Buffer.from(encoded.trim(), "base64");
  if (key.length !== 32 || key.toString("base64").replace(/=+$/, "") !== encoded.trim().replace(/=+$/, "")) {
    throw new Error("the backup key must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)");
  }
  return key;
}

function nonce(prefix: Buffer, index: number, final: boolean): Buffer {
  const value = Buffer.alloc(12);
  prefix.copy(value, 0);
  value.writeUInt32BE(index, PREFIX_BYTES);
  value[11] = final ? 1 : 0;
  return value;
}

/** Encrypts a stream into the framed format above. */
export class EncryptStream extends Transform {
  private readonly header: Buffer;
  private readonly prefix = randomBytes(PREFIX_BYTES);
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0;

  constructor(private readonly key: Buffer) {
    super();
    this.header = Buffer.concat([MAGIC, Buffer.from([VERSION]), keyId(key), this.prefix]);
    this.push(this.header);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // One chunk is always held back, so the last one can carry the final flag.
    while (this.pendingBytes > CHUNK_BYTES) {
      const all = Buffer.concat(this.pending);
      this.pushFrame(all.subarray(0, CHUNK_BYTES), false);
      const rest = all.subarray(CHUNK_BYTES);
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.pushFrame(Buffer.concat(this.pending), true);
    this.pending = [];
    callback();
  }

  private pushFrame(plaintext: Buffer, final: boolean): void {
    if (this.index === 0xffffffff) throw new Error("backup too large for one file");
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce(this.prefix, this.index++, final));
    cipher.setAAD(this.header);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const head = Buffer.alloc(FRAME_HEAD_BYTES);
    head[0] = final ? FINAL_FLAG : 0;
    head.writeUInt32BE(ciphertext.length, 1);
    this.push(Buffer.concat([head, ciphertext, cipher.getAuthTag()]));
  }
}

/** Decrypts the framed format; fails on a wrong key, any changed byte, reordering or truncation. */
export class DecryptStream extends Transform {
  private buffered: Buffer = Buffer.alloc(0);
  private header: Buffer | undefined;
  private index = 0;
  private finished = false;

  constructor(private readonly key: Buffer) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    try {
      this.drain();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (!this.finished || this.buffered.length > 0) {
      callback(new BackupDecryptionError(this.finished ? "data after the final chunk" : "the backup is truncated (no final chunk)"));
      return;
    }
    callback();
  }

  private drain(): void {
    if (this.header === undefined) {
      if (this.buffered.length < HEADER_BYTES) return;
      const header = this.buffered.subarray(0, HEADER_BYTES);
      if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new BackupDecryptionError("not a Shoal backup file");
      if (header[MAGIC.length] !== VERSION) throw new BackupDecryptionError(`unknown backup format version ${header[MAGIC.length]}`);
      const id = header.subarray(MAGIC.length + 1, MAGIC.length + 1 + KEY_ID_BYTES);
      if (!id.equals(keyId(this.key))) throw new BackupDecryptionError("the backup was encrypted with another key");
      this.header = Buffer.from(header);
      this.buffered = this.buffered.subarray(HEADER_BYTES);
    }
    const prefix = this.header.subarray(HEADER_BYTES - PREFIX_BYTES);
    while (this.buffered.length >= FRAME_HEAD_BYTES) {
      if (this.finished) throw new BackupDecryptionError("data after the final chunk");
      const flags = this.buffered[0] ?? 0;
      const length = this.buffered.readUInt32BE(1);
      if (length > CHUNK_BYTES || (flags & ~FINAL_FLAG) !== 0) throw new BackupDecryptionError(`chunk ${this.index} is damaged`);
      const frameBytes = FRAME_HEAD_BYTES + length + TAG_BYTES;
      if (this.buffered.length < frameBytes) return;
      const final = (flags & FINAL_FLAG) !== 0;
      const decipher = createDecipheriv("aes-256-gcm", this.key, nonce(prefix, this.index, final));
      decipher.setAAD(this.header);
      decipher.setAuthTag(this.buffered.subarray(FRAME_HEAD_BYTES + length, frameBytes));
      let plaintext: Buffer;
      try {
        plaintext = Buffer.concat([decipher.update(this.buffered.subarray(FRAME_HEAD_BYTES, FRAME_HEAD_BYTES + length)), decipher.final()]);
      } catch {
        throw new BackupDecryptionError(`chunk ${this.index} failed authentication (the file was changed or damaged)`);
      }
      this.buffered = this.buffered.subarray(frameBytes);
      this.index++;
      this.finished = final;
      if (plaintext.length > 0) this.push(plaintext);
    }
  }
}

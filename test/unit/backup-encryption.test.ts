import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BackupDecryptionError, CHUNK_BYTES, DecryptStream, EncryptStream, HEADER_BYTES, parseBackupKey } from "../../lib/backups/encryption";

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function encrypt(plaintext: Buffer, key: Buffer): Promise<Buffer> {
  // Fed in uneven pieces, as a dump arrives.
  const pieces = [];
  for (let offset = 0; offset < plaintext.length; offset += 10_007) pieces.push(plaintext.subarray(offset, offset + 10_007));
  return collect(Readable.from(pieces).pipe(new EncryptStream(key)));
}

async function decrypt(stored: Buffer, key: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const decrypting = new DecryptStream(key);
  decrypting.on("data", (chunk: Buffer) => chunks.push(chunk));
  await pipeline(Readable.from([stored.subarray(0, 1000), stored.subarray(1000)]), decrypting);
  return Buffer.concat(chunks);
}

const key = randomBytes(32);
const plaintext = randomBytes(3 * CHUNK_BYTES + 12_345);

describe("backup encryption", () => {
  it("gives the plaintext back with the same key, and never stores it in the clear", async () => {
    const stored = await encrypt(plaintext, key);
    expect(stored.includes(plaintext.subarray(0, 64))).toBe(false);
    expect(await decrypt(stored, key)).toEqual(plaintext);
  });

  it("round-trips an empty stream", async () => {
    expect(await decrypt(await encrypt(Buffer.alloc(0), key), key)).toEqual(Buffer.alloc(0));
  });

  it("cannot be read with another key", async () => {
    const stored = await encrypt(plaintext, key);
    await expect(decrypt(stored, randomBytes(32))).rejects.toThrow("encrypted with another key");
  });

  it("fails authentication when one byte anywhere in a chunk is flipped", async () => {
    const stored = await encrypt(plaintext, key);
    for (const position of [HEADER_BYTES + 10, Math.floor(stored.length / 2), stored.length - 1]) {
      const tampered = Buffer.from(stored);
      tampered[position] = (tampered[position] ?? 0) ^ 0x01;
      await expect(decrypt(tampered, key)).rejects.toThrow(BackupDecryptionError);
    }
  });

  it("detects a file cut after a whole chunk", async () => {
    const stored = await encrypt(plaintext, key);
    const frame = 5 + CHUNK_BYTES + 16;
    await expect(decrypt(stored.subarray(0, HEADER_BYTES + 2 * frame), key)).rejects.toThrow("truncated");
  });

  it("detects chunks swapped in place", async () => {
    const stored = await encrypt(plaintext, key);
    const frame = 5 + CHUNK_BYTES + 16;
    const first = stored.subarray(HEADER_BYTES, HEADER_BYTES + frame);
    const second = stored.subarray(HEADER_BYTES + frame, HEADER_BYTES + 2 * frame);
    const swapped = Buffer.concat([stored.subarray(0, HEADER_BYTES), second, first, stored.subarray(HEADER_BYTES + 2 * frame)]);
    await expect(decrypt(swapped, key)).rejects.toThrow("failed authentication");
  });

  it("accepts only a 32-byte base64 key", () => {
    expect(parseBackupKey(key.toString("base64"))).toEqual(key);
    expect(() => parseBackupKey(randomBytes(16).toString("base64"))).toThrow("32 bytes in base64");
    expect(() => parseBackupKey("not base64 at all!")).toThrow("32 bytes in base64");
  });
});

/**
 * The bytes bench/upload.ts uploads, made on the fly: a real media file as the head (Shoal sniffs the
 * type from the first bytes), then pseudo-random padding up to the wanted size. The padding is cut from
 * one pool of random bytes in 1 MiB blocks, each block starting at an offset chosen by the upload's seed
 * and the block's index: nothing is copied or computed per byte, the client's CPU stays free for the
 * server, and uploads with different seeds have different contents (Shoal keeps one copy of identical
 * uploads of one owner). The same seed always gives the same bytes, so their SHA-256 can be checked
 * against what the server computed, after the measurements.
 */
import { createHash, randomBytes } from "node:crypto";

/** Padding block: the unit the pool is cut in, and the size of the chunks handed to the socket. */
export const BLOCK_BYTES = 1024 * 1024;
const POOL_BYTES = 16 * 1024 * 1024;

export class UploadContent {
  private readonly pool = randomBytes(POOL_BYTES + BLOCK_BYTES);

  constructor(
    /** The media file the content starts with. */
    readonly head: Buffer,
  ) {}

  /** One upload's content: `size` bytes, the head then the padding of `seed`. */
  of(size: number, seed: number): ContentStream {
    if (size < this.head.length) throw new Error(`an upload of ${size} bytes cannot hold the ${this.head.length}-byte head`);
    return new ContentStream(this.head, this.pool, size, seed);
  }
}

/** 32-bit integer mix (murmur3's finalizer), so that neighbouring (seed, block) pairs land far apart. */
function mix(seed: number, block: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(block + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class ContentStream {
  constructor(
    private readonly head: Buffer,
    private readonly pool: Buffer,
    readonly size: number,
    private readonly seed: number,
  ) {}

  /** The bytes from `start` (inclusive) to `end` (exclusive), as views of at most BLOCK_BYTES; nothing is copied. */
  *range(start = 0, end = this.size): Generator<Buffer> {
    let position = Math.max(0, start);
    const stop = Math.min(end, this.size);
    while (position < stop) {
      if (position < this.head.length) {
        const until = Math.min(stop, this.head.length);
        yield this.head.subarray(position, until);
        position = until;
        continue;
      }
      const padding = position - this.head.length;
      const block = Math.floor(padding / BLOCK_BYTES);
      const within = padding - block * BLOCK_BYTES;
      const length = Math.min(BLOCK_BYTES - within, stop - position);
      // A 4 KiB-aligned offset into the pool, leaving room for a whole block after it.
      const offset = (mix(this.seed, block) % ((this.pool.length - BLOCK_BYTES) / 4096)) * 4096 + within;
      yield this.pool.subarray(offset, offset + length);
      position += length;
    }
  }

  /** SHA-256 of all of it, hex (about a second per GiB: call it outside measurements). */
  sha256(): string {
    return this.digest("sha256");
  }

  /** MD5 of all of it, hex: what an S3 server gives as the ETag of an object stored with one PUT. */
  md5(): string {
    return this.digest("md5");
  }

  private digest(algorithm: "sha256" | "md5"): string {
    const hash = createHash(algorithm);
    for (const chunk of this.range()) hash.update(chunk);
    return hash.digest("hex");
  }
}

/** multipart/form-data framing around one file field (and a title field before it, as the web page sends). */
export function multipartFraming(fileName: string, contentType: string): { boundary: string; before: Buffer; after: Buffer } {
  const boundary = `----ShoalBench${randomBytes(12).toString("hex")}`;
  const before = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nupload benchmark\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\nContent-Type: ${contentType}\r\n\r\n`,
  );
  const after = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { boundary, before, after };
}

import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";

/** A fresh media prefix per test, so that tests never see each other's objects. */
export function newMediaId(): string {
  return randomBytes(12).toString("hex");
}

/**
 * A byte stream of unknown length (no Content-Length anywhere), in uneven chunks, that fails with `failure`
 * after `failAfter` bytes when given.
 */
export function streamOf(data: Buffer, options: { failAfter?: number; failure?: Error } = {}): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    let offset = 0;
    let size = 1;
    while (offset < data.length) {
      if (options.failAfter !== undefined && offset >= options.failAfter) throw options.failure ?? new Error("source failed");
      size = (size * 7 + 13_337) % (256 * 1024) || 1;
      yield data.subarray(offset, offset + size);
      offset += size;
      // Let other I/O run, as a network upload would.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { RunningHashes } from "../../lib/uploads/running-hash";
import { Sha256Thread } from "../../lib/uploads/sha256-thread";

const expected = (...parts: Buffer[]) => createHash("sha256").update(Buffer.concat(parts)).digest("hex");

/** Splits bytes into chunks of the given sizes, repeating the pattern until all are used. */
function chunked(bytes: Buffer, sizes: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, index = 0; at < bytes.length; index++) {
    const size = sizes[index % sizes.length]!;
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** A store that keeps what it reads (up to `keep` bytes when given, as a store that failed to write the rest would). */
function store(kept: Buffer[], offset: number, keep?: number) {
  return async (readable: Readable): Promise<number> => {
    let taken = 0;
    for await (const chunk of readable) {
      const part = keep === undefined ? (chunk as Buffer) : (chunk as Buffer).subarray(0, Math.max(0, keep - taken));
      kept.push(part);
      taken += part.length;
    }
    return offset + taken;
  };
}

describe("Sha256Thread", () => {
  it("hashes like node:crypto whatever the chunking, across batch boundaries and with chunks larger than a batch", async () => {
    const bytes = randomBytes(5 * 1024 * 1024 + 123);
    for (const sizes of [[1], [65_536], [1_048_575, 3], [3 * 1024 * 1024]]) {
      const hash = Sha256Thread.shared().create();
      // A single-byte pattern over 5 MiB would take long; hash a short prefix in that case.
      const input = sizes[0] === 1 ? bytes.subarray(0, 4096) : bytes;
      for (const chunk of chunked(input, sizes)) await hash.update(chunk);
      await expect(hash.digest()).resolves.toBe(expected(input));
    }
  });

  it("keeps concurrent hashes apart, and hashes nothing to the digest of no bytes", async () => {
    const [one, two] = [randomBytes(3_000_000), randomBytes(2_000_000)];
    const [first, second, empty] = [Sha256Thread.shared().create(), Sha256Thread.shared().create(), Sha256Thread.shared().create()];
    for (let at = 0; at < 3_000_000; at += 100_000) {
      await first.update(one.subarray(at, at + 100_000));
      await second.update(two.subarray(at, at + 100_000));
    }
    await expect(Promise.all([first.digest(), second.digest(), empty.digest()])).resolves.toEqual([
      expected(one),
      expected(two),
      expected(),
    ]);
  });

  it("stops its thread once idle, not while an upload is paused between chunks, and starts it again for the next", async () => {
    const thread = new Sha256Thread(200);
    const paused = thread.create();
    const first = randomBytes(1_500_000);
    await paused.update(first);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(thread.running).toBe(true);
    const rest = randomBytes(10);
    await paused.update(rest);
    await expect(paused.digest()).resolves.toBe(expected(first, rest));
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(thread.running).toBe(false);
    const next = thread.create();
    await next.update(rest);
    await expect(next.digest()).resolves.toBe(expected(rest));
    expect(thread.running).toBe(true);
  });
});

describe("RunningHashes", () => {
  const hashes = () => new RunningHashes(3600_000);

  it("continues one upload's hash over its PATCHes and gives its digest once all bytes are in", async () => {
    const running = hashes();
    const parts = [randomBytes(700_000), randomBytes(2_100_000), randomBytes(5)];
    const kept: Buffer[] = [];
    let offset = 0;
    for (const part of parts) offset = await running.write(Readable.from(chunked(part, [65_536])), "u1", offset, store(kept, offset));
    expect(Buffer.concat(kept).equals(Buffer.concat(parts))).toBe(true);
    await expect(running.digest("u1", offset)).resolves.toBe(expected(...parts));
    // Forgotten once given.
    await expect(running.digest("u1", offset)).resolves.toBeUndefined();
  });

  it("gives no digest when a PATCH it did not see came first (another node took it)", async () => {
    const running = hashes();
    const [first, second] = [randomBytes(1000), randomBytes(1000)];
    await running.write(Readable.from([first]), "u2", 0, store([], 0));
    // The next bytes this node sees start after bytes it never saw.
    const offset = await running.write(Readable.from([second]), "u2", 1500, store([], 1500));
    await expect(running.digest("u2", offset)).resolves.toBeUndefined();
  });

  it("gives no digest when the store kept fewer bytes than passed through it", async () => {
    const running = hashes();
    const bytes = randomBytes(200_000);
    const offset = await running.write(Readable.from(chunked(bytes, [65_536])), "u3", 0, store([], 0, 150_000));
    expect(offset).toBe(150_000);
    await expect(running.digest("u3", 200_000)).resolves.toBeUndefined();
    await expect(running.digest("u3", 150_000)).resolves.toBeUndefined();
  });

  it("gives no digest after a failed write, nor for an upload that is not complete", async () => {
    const running = hashes();
    const failing = async (readable: Readable): Promise<number> => {
      readable.resume();
      throw new Error("disk full");
    };
    await expect(running.write(Readable.from([randomBytes(10)]), "u4", 0, failing)).rejects.toThrow("disk full");
    await expect(running.digest("u4", 10)).resolves.toBeUndefined();
    await running.write(Readable.from([randomBytes(10)]), "u5", 0, store([], 0));
    await expect(running.digest("u5", 20)).resolves.toBeUndefined();
  });
});

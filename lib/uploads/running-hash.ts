import { Transform, pipeline } from "node:stream";
import type { Readable } from "node:stream";
import { Sha256Thread } from "./sha256-thread";
import type { OffThreadHash } from "./sha256-thread";

interface Running {
  readonly hash: OffThreadHash;
  /** Bytes hashed so far: the upload's offset when they were all stored. */
  readonly offset: number;
  readonly touchedAt: number;
}

/** Above this many uploads in flight, entries untouched for longer than the expiry are dropped on the next write. */
const PRUNE_ABOVE = 1000;

/**
 * The SHA-256 of each resumable upload, computed while its bytes arrive, so that a finished upload need
 * not be read back to be hashed. A hash continues only where this process saw every byte before: when a
 * PATCH went to another node, or the store kept fewer bytes than passed through, the running hash is
 * dropped and the finished upload is hashed by reading it (digest() answers undefined). The hashing
 * itself runs on a thread of its own (Sha256Thread).
 */
export class RunningHashes {
  private readonly running = new Map<string, Running>();

  constructor(private readonly expiryMs: number) {}

  /** Runs one write of the upload's store with the bytes hashed on their way to it; answers the store's new offset. */
  async write(readable: Readable, id: string, offset: number, store: (readable: Readable) => Promise<number>): Promise<number> {
    const previous = this.running.get(id);
    this.running.delete(id);
    const continued = previous?.offset === offset ? previous.hash : undefined;
    if (previous && !continued) previous.hash.forget();
    const hash = offset === 0 ? Sha256Thread.shared().create() : continued;
    if (hash === undefined) return store(readable);
    let hashed = offset;
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hashed += chunk.length;
        hash.passOn(chunk, callback);
      },
    });
    pipeline(readable, hashing, () => undefined);
    let newOffset: number;
    try {
      newOffset = await store(hashing);
    } catch (error) {
      hash.forget();
      throw error;
    }
    if (newOffset === hashed) {
      this.prune();
      this.running.set(id, { hash, offset: newOffset, touchedAt: Date.now() });
    } else {
      hash.forget();
    }
    return newOffset;
  }

  /** The upload's SHA-256 (hex) when every one of its `size` bytes was hashed here; forgets the upload either way. */
  async digest(id: string, size: number): Promise<string | undefined> {
    const running = this.running.get(id);
    this.running.delete(id);
    if (running?.offset !== size) {
      running?.hash.forget();
      return undefined;
    }
    // The thread failed: reading the upload back is the way left.
    return running.hash.digest().catch(() => undefined);
  }

  forget(id: string): void {
    this.running.get(id)?.hash.forget();
    this.running.delete(id);
  }

  private prune(): void {
    if (this.running.size < PRUNE_ABOVE) return;
    const oldest = Date.now() - this.expiryMs;
    for (const [id, running] of this.running) if (running.touchedAt < oldest) this.forget(id);
  }
}

import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Read-your-writes bookkeeping. Whoever acts (a user, or a session before sign-in) is the
 * consistency key of the work running on their behalf; after they write, the primary's
 * position is remembered under that key for a short window, and their reads wait for a
 * replica to reach it (or go to the primary).
 */
const consistencyScope = new AsyncLocalStorage<string>();

export function runWithConsistencyKey<T>(key: string | undefined, work: () => T): T {
  return key === undefined ? work() : consistencyScope.run(key, work);
}

export function currentConsistencyKey(): string | undefined {
  return consistencyScope.getStore();
}

/** Remembers the last write position per key; shared by all nodes in cluster mode. */
export interface WriteMarkStore {
  remember(key: string, position: string, ttlMs: number): Promise<void>;
  recall(key: string): Promise<string | undefined>;
}

const MAX_MEMORY_MARKS = 100_000;

export class MemoryWriteMarkStore implements WriteMarkStore {
  private readonly marks = new Map<string, { position: string; expiresAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async remember(key: string, position: string, ttlMs: number): Promise<void> {
    this.marks.delete(key);
    this.marks.set(key, { position, expiresAt: this.now() + ttlMs });
    if (this.marks.size > MAX_MEMORY_MARKS) {
      const oldest = this.marks.keys().next().value;
      if (oldest !== undefined) this.marks.delete(oldest);
    }
  }

  async recall(key: string): Promise<string | undefined> {
    const mark = this.marks.get(key);
    if (!mark) return undefined;
    if (mark.expiresAt <= this.now()) {
      this.marks.delete(key);
      return undefined;
    }
    return mark.position;
  }
}

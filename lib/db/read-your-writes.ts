import type { ExpiringStore } from "../expiring-store";
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
export type WriteMarkStore = ExpiringStore;

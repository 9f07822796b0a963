import type { Redis } from "ioredis";
import { MemoryViewStore } from "./memory-view-store";
import { RedisViewStore } from "./redis-view-store";
import { viewerKey } from "./view-store";
import type { ViewStore } from "./view-store";

const stores = new WeakMap<object, ViewStore>();

/**
 * The view counters of one node: the shared Redis in cluster mode, else this process's memory, which
 * the gateway (counting) and the media service (flushing) of an embedded node must share.
 */
export function viewStoreOf(runtime: { readonly redis: Redis | undefined }): ViewStore {
  let store = stores.get(runtime);
  if (!store) stores.set(runtime, (store = runtime.redis ? new RedisViewStore(runtime.redis) : new MemoryViewStore()));
  return store;
}

/** What the gateway knows of a request that read an item. */
export interface ItemRead {
  readonly callerId: string | undefined;
  readonly sessionId: string | undefined;
  readonly ip: string | undefined;
  readonly userAgent: string | undefined;
  /** The answer of media.get (also when it came from the cache, or ends as a 304). */
  readonly answer: unknown;
}

/** Counts a read of an item as a view when someone other than its owner made it; never fails the read. */
export function viewRecorder(store: ViewStore, secret: string, onError: (error: Error) => void): (read: ItemRead) => Promise<void> {
  return async (read) => {
    const media = (read.answer as { media?: { id?: unknown; owner?: { id?: unknown } } } | null)?.media;
    if (typeof media?.id !== "string" || media.owner?.id === read.callerId) return;
    const viewer = viewerKey(secret, { sessionId: read.sessionId, ip: read.ip, userAgent: read.userAgent });
    await store.record(media.id, viewer, Date.now()).catch(onError);
  };
}

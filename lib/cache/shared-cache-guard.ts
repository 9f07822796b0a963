import { RedisCircuit } from "./redis-circuit";
import type { WatchedClient } from "./redis-circuit";

type Unlock = () => Promise<void>;

/** The part of a Moleculer cacher that the guard wraps: keys without the cacher's own prefix. */
export interface GuardedCacher {
  connected: boolean | null;
  get(key: string): Promise<unknown>;
  set(key: string, data: unknown, ttl?: number): Promise<unknown>;
  del(key: string | string[]): Promise<unknown>;
  clean(match?: string | string[]): Promise<unknown>;
  lock(key: string | string[], ttl?: number): Promise<Unlock>;
  tryLock?(key: string | string[], ttl?: number): Promise<Unlock>;
  getWithTTL?(key: string): Promise<{ data: unknown; ttl: number | null }>;
}

const released: Unlock = () => Promise.resolve();

/**
 * Makes the shared (Redis) cache optional for every request: while the circuit is open, reads miss, writes and
 * cleans are skipped and locks are not taken, so cached actions answer from the database without waiting on Redis;
 * a failing command opens the circuit instead of failing the request. Moleculer's cacher middleware calls the
 * handler directly while `connected` is false, so that is the circuit's state.
 *
 * Cleans skipped or lost during an outage, and entries a slow Redis received late, could leave stale answers:
 * when Redis answers again, the whole cache is emptied before it is used again. Answers the circuit (for health).
 */
export function guardSharedCache(cacher: GuardedCacher, client: WatchedClient): RedisCircuit {
  Object.defineProperty(cacher, "connected", {
    configurable: true,
    get: () => circuit.available,
    // Moleculer sets it on connect and error; the circuit knows better.
    set: () => undefined,
  });
  const shared = {
    get: cacher.get.bind(cacher),
    set: cacher.set.bind(cacher),
    del: cacher.del.bind(cacher),
    clean: cacher.clean.bind(cacher),
    lock: cacher.lock.bind(cacher),
    tryLock: cacher.tryLock?.bind(cacher),
    getWithTTL: cacher.getWithTTL?.bind(cacher),
  };
  const circuit = new RedisCircuit(client, { recover: () => shared.clean("*") });
  const skipped = <T>(fallback: T) => (error: unknown): T => {
    void error;
    return fallback;
  };

  cacher.get = (key) => circuit.run(() => shared.get(key)).catch(skipped(null));
  cacher.set = (key, data, ttl) => circuit.run(() => shared.set(key, data, ttl)).catch(skipped(undefined));
  cacher.del = (key) => circuit.run(() => shared.del(key)).catch(skipped(undefined));
  cacher.clean = (match) => circuit.run(() => shared.clean(match)).catch(skipped(undefined));
  const { getWithTTL, tryLock } = shared;
  if (getWithTTL) {
    cacher.getWithTTL = (key) => circuit.run(() => getWithTTL(key)).catch(skipped({ data: null, ttl: null }));
  }
  // A lock guards against a stampede of identical queries; without Redis each request goes to the database.
  cacher.lock = (key, ttl) => {
    if (!circuit.available) return Promise.resolve(released);
    let stopWaiting = (): void => undefined;
    const opened = new Promise<Unlock>((resolve) => {
      stopWaiting = circuit.onOpen(() => resolve(released));
    });
    return Promise.race([shared.lock(key, ttl).catch(skipped(released)), opened]).finally(stopWaiting);
  };
  // tryLock rejects when someone else holds the lock: "refreshing elsewhere" is also the right answer without Redis.
  if (tryLock) {
    cacher.tryLock = (key, ttl) => (circuit.available ? tryLock(key, ttl) : Promise.reject(new Error("shared cache unavailable")));
  }
  return circuit;
}

import { logOutages } from "../outages";
import type { OutageLog } from "../outages";
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
  close(): Promise<unknown>;
  /** The cacher's logger: where outages are reported, once each. */
  logger?: OutageLog;
}

const released: Unlock = () => Promise.resolve();

/** What Moleculer's Redis cacher logs, with the error it then rejects with, when a delete or a clean fails. */
const DELETE_FAILURES = [/^Redis 'del' error/, /^Redis 'scanDel' error/, /^Error occured while deleting keys/];

/**
 * The cacher's logger, with its reports of failed deletes and cleans at debug level: the guard counts each as a
 * missed write (the cache is emptied once Redis is back), and the outage behind them is reported once.
 */
function withoutDeleteFailures(log: OutageLog): OutageLog {
  const quieter = Object.create(log) as OutageLog;
  quieter.error = (message: string, ...details: unknown[]) => {
    if (typeof message === "string" && DELETE_FAILURES.some((pattern) => pattern.test(message))) log.debug?.(message, ...details);
    else log.error(message, ...details);
  };
  return quieter;
}

/**
 * Makes the shared (Redis) cache optional for every request: while the circuit is open, reads miss, writes and
 * cleans are skipped and locks are not taken, so cached actions answer from the database without waiting on Redis;
 * a failing command opens the circuit instead of failing the request. Moleculer's cacher middleware calls the
 * handler directly while `connected` is false, so that is the circuit's state.
 *
 * A clean skipped or failed during an outage, or an entry whose write failed (a slow Redis may still store it, late),
 * could leave stale answers: after such a miss, the whole cache is emptied when Redis answers again, before it is used
 * again. A failed read alone empties nothing, so a brief stall costs no cache-wide refill. Answers the circuit (for health).
 *
 * Moleculer's cacher logs every error the client reports: while Redis is down, one per reconnection attempt, every
 * second, and each failed delete or clean. Those listeners go, the failed deletes are debug; an outage is logged
 * once when the circuit opens and once when it closes (logOutages).
 * Closing ends the connection whatever state it is in.
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
  // The cacher's own listeners were registered with the client; ioredis needs one listener to stay, or it throws.
  for (const listener of client.listeners("error")) client.off("error", listener as (...args: unknown[]) => void);
  client.on("error", () => undefined);
  // Writes missed since the cache was last emptied; one missed during the emptying calls for another.
  let missedWrites = 0;
  const circuit = new RedisCircuit(client, {
    recover: async () => {
      const missedBefore = missedWrites;
      if (missedBefore === 0) return;
      await shared.clean("*");
      missedWrites -= missedBefore;
    },
  });
  if (cacher.logger) {
    logOutages(circuit, cacher.logger, "The shared cache (Redis)");
    cacher.logger = withoutDeleteFailures(cacher.logger);
  }
  const close = cacher.close.bind(cacher);
  // QUIT fails while the client is not connected (it has no offline queue) or Redis hangs: without the disconnect the
  // client would go on reconnecting for ever, keeping the process alive after the node stopped.
  cacher.close = async () => {
    circuit.stop();
    try {
      if (client.status === "ready") await close();
    } catch {
      // disconnected below
    } finally {
      client.disconnect();
    }
  };
  const missed = (error: unknown): undefined => {
    void error;
    missedWrites += 1;
    return undefined;
  };
  const skipped = <T>(fallback: T) => (error: unknown): T => {
    void error;
    return fallback;
  };

  cacher.get = (key) => circuit.run(() => shared.get(key)).catch(skipped(null));
  // A write skipped while the circuit is open stored nothing; one that failed may have been stored.
  cacher.set = (key, data, ttl) => {
    if (!circuit.available) return Promise.resolve(undefined);
    return circuit.run(() => shared.set(key, data, ttl)).catch(missed);
  };
  cacher.del = (key) => circuit.run(() => shared.del(key)).catch(missed);
  cacher.clean = (match) => circuit.run(() => shared.clean(match)).catch(missed);
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

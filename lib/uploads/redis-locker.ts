import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { MemoryLocker } from "@tus/server";
import type { Lock, Locker, RequestRelease } from "@tus/utils";
import { ERRORS } from "@tus/utils";

const RELEASE_CHANNEL = "shoal:tus:release";
const RETRY_MS = 50;

/**
 * A tus Locker shared by every gateway node: an upload's PATCH may arrive at any node,
 * and only one request may write to an upload at a time. The lock is a Redis key with
 * a lease, renewed while held; a request that wants a lock held elsewhere asks its
 * holder to let go over pub/sub (tus's "request release": the old request is aborted,
 * as when a client reconnects after a network drop).
 *
 * While Redis cannot be reached (a command fails or times out), a lock falls back to this node's own
 * in-process lock: uploads go on through every node, and requests for one upload are kept apart on each
 * node, though no longer across nodes (a client sends one request at a time for an upload anyway).
 */
export class RedisLocker implements Locker {
  private readonly held = new Map<string, RequestRelease>();
  /** This node's locks while Redis is out of reach. */
  readonly local = new MemoryLocker();
  private readonly subscriber: Redis;

  constructor(
    readonly redis: Redis,
    private readonly options: { leaseMs?: number; acquireTimeoutMs?: number } = {},
  ) {
    // The shared client fails commands while disconnected (enableOfflineQueue: false); a duplicate would
    // inherit that and drop this SUBSCRIBE, sent before it has connected, leaving the node deaf to release requests.
    this.subscriber = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
    this.subscriber.on("error", () => undefined);
    void this.subscriber.subscribe(RELEASE_CHANNEL).catch(() => undefined);
    this.subscriber.on("message", (_channel: string, id: string) => {
      void this.held.get(id)?.();
    });
  }

  get leaseMs(): number {
    return this.options.leaseMs ?? 30_000;
  }

  get acquireTimeoutMs(): number {
    return this.options.acquireTimeoutMs ?? 30_000;
  }

  newLock(id: string): Lock {
    return new RedisLock(id, this);
  }

  /** Called by locks: remembers the local holder so a release request from any node reaches it. */
  holding(id: string, requestRelease: RequestRelease | undefined): void {
    if (requestRelease) this.held.set(id, requestRelease);
    else this.held.delete(id);
  }

  /** Asks the holder of `id`'s lock, on whichever node, to let go; an unreachable Redis only means nobody hears it. */
  requestRelease(id: string): Promise<number> {
    return this.redis.publish(RELEASE_CHANNEL, id).catch(() => 0);
  }

  close(): void {
    this.subscriber.disconnect();
  }
}

class RedisLock implements Lock {
  private readonly key: string;
  private readonly token = randomBytes(16).toString("hex");
  private renewal: NodeJS.Timeout | undefined;
  /** Held instead of the Redis lease when Redis could not be reached. */
  private local: Lock | undefined;

  constructor(
    private readonly id: string,
    private readonly locker: RedisLocker,
  ) {
    this.key = `shoal:tus:lock:${id}`;
  }

  async lock(stopSignal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const { redis, leaseMs, acquireTimeoutMs } = this.locker;
    const deadline = Date.now() + acquireTimeoutMs;
    let asked = false;
    while (!stopSignal.aborted && Date.now() < deadline) {
      let taken: boolean;
      try {
        taken = (await redis.set(this.key, this.token, "PX", leaseMs, "NX")) === "OK";
      } catch {
        const local = this.locker.local.newLock(this.id);
        await local.lock(stopSignal, requestRelease);
        this.local = local;
        return;
      }
      if (taken) {
        this.locker.holding(this.id, requestRelease);
        this.renewal = setInterval(() => void this.renew(), leaseMs / 3);
        this.renewal.unref();
        return;
      }
      if (!asked) {
        asked = true;
        await this.locker.requestRelease(this.id);
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
    throw ERRORS.ERR_LOCK_TIMEOUT;
  }

  async unlock(): Promise<void> {
    const { local } = this;
    if (local) {
      this.local = undefined;
      await local.unlock();
      return;
    }
    clearInterval(this.renewal);
    this.locker.holding(this.id, undefined);
    // Delete only our own lease: it may have expired and been taken by someone else. Should Redis be out of
    // reach now, the lease ends by itself, and whoever wants the upload meanwhile asks for it as usual.
    await this.locker.redis
      .eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, this.key, this.token)
      .catch(() => undefined);
  }

  private async renew(): Promise<void> {
    await this.locker.redis
      .eval(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end",
        1,
        this.key,
        this.token,
        String(this.locker.leaseMs),
      )
      .catch(() => undefined);
  }
}

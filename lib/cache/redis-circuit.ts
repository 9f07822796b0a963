import { Command } from "ioredis";
import type { Redis, RedisOptions } from "ioredis";
import { parseURL } from "ioredis/built/utils";
import { OutageReports } from "../outages";

/** A Redis command gets this long before it counts as failed: a healthy Redis on the same network answers in about a millisecond. */
export const REDIS_COMMAND_TIMEOUT_MS = 500;
/** Opening a connection gets this long. */
export const REDIS_CONNECT_TIMEOUT_MS = 1000;
/** After a failure, Redis is left alone this long before it is tried again (sooner when the connection comes back). */
export const REDIS_RETRY_AFTER_MS = 2000;

interface TimedCommand {
  readonly isResolved: boolean;
  reject(error: Error): void;
  _commandTimeoutTimer?: NodeJS.Timeout;
}

let timeoutsReadRepliesFirst = false;

/**
 * ioredis fails a command when its timer fires, and timers run before the replies waiting on the socket are read:
 * after this process was busy past the timeout (a long garbage collection, a busy event loop), a command Redis had
 * answered in time failed, and tripped the circuit. The timeout decides one turn of the event loop later instead,
 * once those replies have been read.
 */
function letTimeoutsReadRepliesFirst(): void {
  if (timeoutsReadRepliesFirst) return;
  timeoutsReadRepliesFirst = true;
  Command.prototype.setTimeout = function setTimeout(this: TimedCommand, ms: number): void {
    if (this._commandTimeoutTimer) return;
    this._commandTimeoutTimer = globalThis.setTimeout(() => {
      setImmediate(() => {
        if (!this.isResolved) this.reject(new Error("Command timed out"));
      });
    }, ms);
  };
}

/**
 * Connection options for every Redis client of a node: commands fail at once while disconnected (no offline queue)
 * and after REDIS_COMMAND_TIMEOUT_MS when Redis hangs, so that no request waits on Redis for long.
 */
export function redisClientOptions(url: string): RedisOptions {
  letTimeoutsReadRepliesFirst();
  return {
    ...(parseURL(url) as RedisOptions),
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Reconnect quickly at first, then every second: a node notices a returning Redis within a second.
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  };
}

/** The part of an ioredis client that the circuit watches (and the shared cache's guard closes). */
export type WatchedClient = Pick<Redis, "status" | "on" | "off" | "listeners" | "disconnect">;

export class RedisUnavailableError extends Error {
  constructor() {
    super("Redis is unavailable");
    this.name = "RedisUnavailableError";
  }
}

export interface RedisCircuitOptions {
  /**
   * Run once Redis answers again after a failure, before the circuit lets commands through: whatever must be
   * repaired after an outage (the shared cache cleans itself). A rejection keeps the circuit open.
   */
  readonly recover?: () => Promise<unknown>;
  readonly retryAfterMs?: number;
}

/**
 * Whether Redis may be used right now. A failed or timed-out command, or a lost connection, opens the circuit:
 * callers then skip Redis at once instead of each waiting for a timeout. Once the connection is ready again (or
 * after `retryAfterMs`) the circuit runs `recover` against Redis, and closes when that succeeds.
 */
export class RedisCircuit extends OutageReports {
  private open = false;
  private recovering = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly client: WatchedClient,
    private readonly options: RedisCircuitOptions = {},
  ) {
    super();
    client.on("close", () => this.trip(new Error("connection closed")));
    client.on("error", (error: unknown) => this.trip(error));
    client.on("ready", () => {
      if (this.open) void this.tryToRecover();
    });
  }

  /** True while commands may be sent: connected, and no failure since the last recovery. */
  get available(): boolean {
    return !this.open && this.client.status === "ready";
  }

  /** Runs a command unless the circuit is open; a failure opens it. Throws RedisUnavailableError when open. */
  async run<T>(command: () => Promise<T>): Promise<T> {
    if (!this.available) throw new RedisUnavailableError();
    try {
      return await command();
    } catch (error) {
      this.trip(error);
      throw error;
    }
  }

  /** Opens the circuit: Redis failed (`cause`), or a command took too long. */
  trip(cause?: unknown): void {
    if (this.stopped) return;
    const wasOpen = this.open;
    this.open = true;
    if (!wasOpen) this.reportOpen(cause);
    this.scheduleRetry();
  }

  /** Stops retrying (the node is stopping). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.tryToRecover();
    }, this.options.retryAfterMs ?? REDIS_RETRY_AFTER_MS);
    this.retryTimer.unref();
  }

  private async tryToRecover(): Promise<void> {
    if (this.recovering || !this.open || this.stopped) return;
    // Closed on purpose (the node is stopping): nothing to wait for.
    if (this.client.status === "end") return;
    if (this.client.status !== "ready") {
      this.scheduleRetry();
      return;
    }
    this.recovering = true;
    try {
      await (this.options.recover ?? (() => Promise.resolve()))();
      if (this.client.status !== "ready") throw new RedisUnavailableError();
      this.open = false;
      this.reportRecovered();
    } catch {
      this.scheduleRetry();
    } finally {
      this.recovering = false;
    }
  }
}

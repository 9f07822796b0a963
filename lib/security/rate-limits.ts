import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { RateLimiterAbstract } from "rate-limiter-flexible";
import type { RateLimitSettings } from "../../config/settings";
import { RateLimitedError } from "../errors";
import { BatchedRateLimiter, RateLimitExceeded } from "./batched-rate-limiter";

const HOUR = 3600;
/** How often a node sends the API request counts it has not yet sent to Redis, however few. */
const API_SYNC_INTERVAL_MS = 1000;

/**
 * The limits every node shares (Redis in cluster mode, memory when embedded). Each check
 * throws RateLimitedError (429 with Retry-After) when the caller is over its limit.
 */
export class RateLimits {
  private readonly loginFailuresByAccount: RateLimiterAbstract;
  private readonly loginFailuresByIp: RateLimiterAbstract;
  private readonly registrationsByIp: RateLimiterAbstract;
  /** Every API request passes here: in cluster mode counted locally first and sent to Redis in batches. */
  private readonly apiRequestsByIp: RateLimiterAbstract | BatchedRateLimiter;
  private readonly uploadsByUser: RateLimiterAbstract;
  /** The limiters kept in this process's memory (the insurance ones in cluster mode), emptied by close(). */
  private readonly memoryLimiters: RateLimiterMemory[] = [];

  constructor(limits: RateLimitSettings, redis: Redis | undefined) {
    const make = (keyPrefix: string, points: number, duration: number): RateLimiterAbstract => {
      const memory = new RateLimiterMemory({ keyPrefix, points, duration });
      this.memoryLimiters.push(memory);
      // With Redis unreachable, each node limits on its own rather than letting everything through.
      return redis
        ? new RateLimiterRedis({ storeClient: redis, keyPrefix: `shoal:rl:${keyPrefix}`, points, duration, insuranceLimiter: memory })
        : memory;
    };
    this.loginFailuresByAccount = make("login-account", limits.loginFailuresPerAccountPerHour, HOUR);
    this.loginFailuresByIp = make("login-ip", limits.loginFailuresPerIpPerHour, HOUR);
    this.registrationsByIp = make("register-ip", limits.registrationsPerIpPerHour, HOUR);
    const apiRequests = make("api-ip", limits.apiRequestsPerIpPerMinute, 60);
    this.apiRequestsByIp = redis
      ? new BatchedRateLimiter(apiRequests, {
          points: limits.apiRequestsPerIpPerMinute,
          syncBatch: limits.apiRequestsSyncBatch,
          syncIntervalMs: API_SYNC_INTERVAL_MS,
        })
      : apiRequests;
    this.uploadsByUser = make("upload-user", limits.uploadsPerUserPerHour, HOUR);
  }

  /**
   * Takes one attempt from the account's and the address's failure allowance before the
   * password is checked, so that guesses sent at the same moment cannot all slip under
   * the limit; settle(true) gives it back, so only failures count. Throws RateLimitedError
   * (code too_many_attempts) when either allowance is used up.
   */
  async beginLoginAttempt(accountKey: string, ip: string): Promise<LoginAttempt> {
    const [byAccount, byIp] = await Promise.all([
      settledConsume(this.loginFailuresByAccount.consume(accountKey)),
      settledConsume(this.loginFailuresByIp.consume(ip)),
    ]);
    const refused = [byAccount, byIp].find((result) => !result.allowed);
    if (refused) {
      // A refused consume is still counted: give every point back, or refusals alone would extend the lockout.
      await this.refund(accountKey, ip, true, true);
      throw new RateLimitedError("Too many failed sign-ins. Try again later.", refused.state.msBeforeNext / 1000, "too_many_attempts");
    }
    return {
      settle: async (succeeded: boolean) => {
        if (succeeded) {
          await this.refund(accountKey, ip, true, true);
          return { lockedOut: false };
        }
        return { lockedOut: byAccount.state.consumedPoints === this.loginFailuresByAccount.points };
      },
    };
  }

  private async refund(accountKey: string, ip: string, account: boolean, address: boolean): Promise<void> {
    await Promise.all([
      account ? this.loginFailuresByAccount.reward(accountKey, 1) : undefined,
      address ? this.loginFailuresByIp.reward(ip, 1) : undefined,
    ]);
  }

  async consumeRegistration(ip: string): Promise<void> {
    await consumeOrThrow(this.registrationsByIp, ip, "Too many sign-ups from your network. Try again later.");
  }

  async consumeApiRequest(ip: string): Promise<void> {
    const message = "Too many requests. Slow down and try again shortly.";
    if (!(this.apiRequestsByIp instanceof BatchedRateLimiter)) return consumeOrThrow(this.apiRequestsByIp, ip, message);
    try {
      await this.apiRequestsByIp.consume(ip);
    } catch (rejection) {
      if (rejection instanceof RateLimitExceeded) throw new RateLimitedError(message, rejection.msBeforeNext / 1000);
      throw rejection;
    }
  }

  /**
   * Sends the counts not yet in Redis and stops the timer that sends them, then forgets the counts kept in
   * memory: each has a timer until its window ends (up to an hour) that would hold this node's objects as long.
   */
  async close(): Promise<void> {
    if (this.apiRequestsByIp instanceof BatchedRateLimiter) {
      this.apiRequestsByIp.close();
      await this.apiRequestsByIp.syncAll();
    }
    for (const limiter of this.memoryLimiters) forgetAllKeys(limiter);
  }

  async consumeUpload(userId: string): Promise<void> {
    await consumeOrThrow(this.uploadsByUser, userId, "Too many uploads for now. Try again later.");
  }
}

export interface LoginAttempt {
  /** Reports the outcome; lockedOut is true when this failure used up the account's allowance. */
  settle(succeeded: boolean): Promise<{ lockedOut: boolean }>;
}

/** rate-limiter-flexible has no call that drops every key; its memory store is a Map of records, each with its expiry timer. */
function forgetAllKeys(limiter: RateLimiterMemory): void {
  const records = (limiter as unknown as { _memoryStorage?: { _storage?: Map<string, { timeoutId?: NodeJS.Timeout }> } })._memoryStorage?._storage;
  for (const record of records?.values() ?? []) clearTimeout(record.timeoutId);
  records?.clear();
}

async function settledConsume(attempt: Promise<RateLimiterRes>): Promise<{ allowed: boolean; state: RateLimiterRes }> {
  try {
    return { allowed: true, state: await attempt };
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) return { allowed: false, state: rejection };
    throw rejection;
  }
}

async function consumeOrThrow(limiter: RateLimiterAbstract, key: string, message: string): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) throw new RateLimitedError(message, rejection.msBeforeNext / 1000);
    throw rejection;
  }
}

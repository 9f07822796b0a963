import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { RateLimiterAbstract } from "rate-limiter-flexible";
import type { RateLimitSettings } from "../../config/settings";
import { RateLimitedError } from "../errors";

const HOUR = 3600;

/**
 * The limits every node shares (Redis in cluster mode, memory when embedded). Each check
 * throws RateLimitedError (429 with Retry-After) when the caller is over its limit.
 */
export class RateLimits {
  private readonly loginFailuresByAccount: RateLimiterAbstract;
  private readonly loginFailuresByIp: RateLimiterAbstract;
  private readonly registrationsByIp: RateLimiterAbstract;
  private readonly apiRequestsByIp: RateLimiterAbstract;
  private readonly uploadsByUser: RateLimiterAbstract;

  constructor(limits: RateLimitSettings, redis: Redis | undefined) {
    const make = (keyPrefix: string, points: number, duration: number): RateLimiterAbstract => {
      const memory = new RateLimiterMemory({ keyPrefix, points, duration });
      // With Redis unreachable, each node limits on its own rather than letting everything through.
      return redis
        ? new RateLimiterRedis({ storeClient: redis, keyPrefix: `shoal:rl:${keyPrefix}`, points, duration, insuranceLimiter: memory })
        : memory;
    };
    this.loginFailuresByAccount = make("login-account", limits.loginFailuresPerAccountPerHour, HOUR);
    this.loginFailuresByIp = make("login-ip", limits.loginFailuresPerIpPerHour, HOUR);
    this.registrationsByIp = make("register-ip", limits.registrationsPerIpPerHour, HOUR);
    this.apiRequestsByIp = make("api-ip", limits.apiRequestsPerIpPerMinute, 60);
    this.uploadsByUser = make("upload-user", limits.uploadsPerUserPerHour, HOUR);
  }

  /** Refuses a sign-in attempt while the account or the address has used up its failures. */
  async checkLogin(accountKey: string, ip: string): Promise<void> {
    const [byAccount, byIp] = await Promise.all([this.loginFailuresByAccount.get(accountKey), this.loginFailuresByIp.get(ip)]);
    for (const [state, limiter] of [
      [byAccount, this.loginFailuresByAccount],
      [byIp, this.loginFailuresByIp],
    ] as const) {
      if (state && state.consumedPoints >= limiter.points) {
        throw new RateLimitedError("Too many failed sign-ins. Try again later.", state.msBeforeNext / 1000, "too_many_attempts");
      }
    }
  }

  /** Counts a failed sign-in; true when this failure used up the account's allowance (a lockout starts). */
  async recordLoginFailure(accountKey: string, ip: string): Promise<boolean> {
    const [byAccount] = await Promise.all([swallowLimit(this.loginFailuresByAccount.consume(accountKey)), swallowLimit(this.loginFailuresByIp.consume(ip))]);
    return byAccount.consumedPoints === this.loginFailuresByAccount.points;
  }

  async consumeRegistration(ip: string): Promise<void> {
    await consumeOrThrow(this.registrationsByIp, ip, "Too many sign-ups from your network. Try again later.");
  }

  async consumeApiRequest(ip: string): Promise<void> {
    await consumeOrThrow(this.apiRequestsByIp, ip, "Too many requests. Slow down and try again shortly.");
  }

  async consumeUpload(userId: string): Promise<void> {
    await consumeOrThrow(this.uploadsByUser, userId, "Too many uploads for now. Try again later.");
  }
}

async function swallowLimit(attempt: Promise<RateLimiterRes>): Promise<RateLimiterRes> {
  try {
    return await attempt;
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) return rejection;
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

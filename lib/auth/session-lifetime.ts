import type { SessionSettings } from "../../config/settings";

export interface SessionTimes {
  readonly createdAt: number;
  readonly lastSeenAt: number;
  readonly expiresAt: number;
}

/** Write last-seen at most this often, so that an active session does not cost a write per request. */
export const TOUCH_INTERVAL_MS = 60_000;

export function newSessionTimes(now: number, settings: SessionSettings): SessionTimes {
  return { createdAt: now, lastSeenAt: now, expiresAt: now + settings.lifetimeSeconds * 1000 };
}

export function isSessionLive(session: SessionTimes, now: number, settings: SessionSettings): boolean {
  return now < session.expiresAt && now - session.lastSeenAt < settings.idleTimeoutSeconds * 1000;
}

export function shouldTouch(session: SessionTimes, now: number): boolean {
  return now - session.lastSeenAt >= TOUCH_INTERVAL_MS;
}

import type { SessionGate, SessionLookup } from "../auth/session-gate";
import type { SocketSessions } from "./progress-hub";

/**
 * Sockets' sessions, resolved as the gateway resolves requests': the handshake's `auth.token`,
 * else its session cookie or bearer header.
 */
export function socketSessionsThrough(gate: SessionGate, lookup: SessionLookup): SocketSessions {
  return {
    async authenticate(handshake) {
      const fromAuth = typeof handshake.auth.token === "string" ? handshake.auth.token : undefined;
      const presented = fromAuth ? { token: fromAuth, via: "bearer" as const } : gate.tokenOf(handshake);
      if (!presented) return undefined;
      const live = await gate.live(lookup, presented.token, presented.via);
      return live && { userId: live.user.id, sessionId: live.sessionId, endsAt: live.expiresAt };
    },
    endOf: (sessionId) => gate.endOfLive(lookup, sessionId),
  };
}

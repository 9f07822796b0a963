/**
 * The names and shapes services share: broker events, job channels and id rules. A service that emits
 * and one that listens both name the event from here, never from each other.
 */

/** Emitted when an account is deleted; the media service deletes the user's media. */
export const USER_DELETED_EVENT = "user.deleted";

export interface UserDeleted {
  readonly userId: string;
  readonly deletedAt: string;
}

/**
 * Broadcast when sessions end before their time (sign-out, password change, account deletion, role change):
 * every api node disconnects those sessions' sockets.
 */
export const SESSIONS_ENDED_EVENT = "session.ended";

export interface SessionsEnded {
  readonly userId: string;
  readonly sessionIds: readonly string[];
  readonly reason: "signed_out" | "password_changed" | "account_deleted" | "role_changed";
}

/** Processing progress, emitted by workers (and the media service when it queues a job); the api nodes push it to the owner's sockets. */
export const PROGRESS_EVENT = "media.progress";

export interface ProgressUpdate {
  readonly mediaId: string;
  readonly ownerId: string;
  readonly stage: string;
  readonly percent: number;
}

/** Broadcast after writes: `{ patterns }` of cache keys every node cleans from its own cache. */
export const CACHE_CLEAN_EVENT = "cache.clean";

/**
 * Broadcast by `npm run db:promote` and the REPL's `promote` after a replica became primary: every node
 * running a database service re-reads the stored topology of those databases and switches its connections.
 */
export const DB_TOPOLOGY_CHANGED_EVENT = "db.topologyChanged";

export interface DbTopologyChanged {
  readonly databases: readonly string[];
  readonly primary: string;
}

/** Broadcast locally once the channels middleware has connected its adapter (moleculer.config.ts). */
export const CHANNEL_ADAPTER_CONNECTED_EVENT = "jobs.channelAdapterConnected";

/** Payload `{ id, ownerId, kind }`, published by the media service, consumed by the processing workers. */
export const MEDIA_JOBS_CHANNEL = "media.jobs";
/** Where the adapter moves a job message whose handler kept throwing (JetStream only). */
export const MEDIA_DEAD_LETTER_CHANNEL = `${MEDIA_JOBS_CHANNEL}.dead`;

/** Users, audit entries and other time-ordered ids are ULIDs (Crockford base 32). */
export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** An action param that must be a ULID, with a message naming what it identifies. */
export function ulidParam(what: string): { type: "string"; pattern: RegExp; messages: { stringPattern: string } } {
  return { type: "string", pattern: ULID_PATTERN, messages: { stringPattern: `is not a ${what} id` } };
}

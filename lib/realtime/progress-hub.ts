import type http from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import type { Redis } from "ioredis";
import { Server } from "socket.io";
import type { ProgressUpdate } from "../service-contracts";
import { watchSessionEnd } from "./session-end-watch";

/** A finished item as its owner sees it (GET /api/media/:id); only its refusal reason is read here. */
export interface MediaOutcome {
  readonly reason: string | null;
}

/** The live session a socket was opened with. */
export interface SocketSession {
  readonly userId: string;
  readonly sessionId: string;
  /** When the session ends if nothing extends it (epoch ms). */
  readonly endsAt: number;
}

export interface SocketSessions {
  /** The live session behind a handshake (session cookie, bearer header or `auth.token`), or undefined. */
  authenticate(handshake: { headers: http.IncomingHttpHeaders; auth: Record<string, unknown> }): Promise<SocketSession | undefined>;
  /** When the session ends, read again without extending it; undefined once it has ended. */
  endOf(sessionId: string): Promise<number | undefined>;
}

export interface ProgressHubOptions {
  readonly sessions: SocketSessions;
  /** Whether a browser may connect from the handshake's Origin (a WebSocket is not covered by the same-origin policy). */
  readonly isAllowedOrigin: (req: http.IncomingMessage) => boolean;
  /** Cluster mode: rooms shared through Redis, so any api node reaches any client. */
  readonly redis: Redis | undefined;
}

/** What the owner's sockets receive (the API contract). */
export const SOCKET_EVENTS = {
  progress: "media:progress",
  ready: "media:ready",
  failed: "media:failed",
  uploadProgress: "upload:progress",
} as const;

const roomOf = (userId: string) => `user:${userId}`;
const sessionRoomOf = (sessionId: string) => `session:${sessionId}`;

/** The commands the socket.io Redis adapter sends without handling their replies. */
const ADAPTER_COMMANDS = ["publish", "subscribe", "psubscribe", "unsubscribe", "punsubscribe"] as const;

/**
 * The adapter neither awaits nor catches its subscribe and publish commands. One still queued when the client is
 * closed (a node stopped while Redis was slow to answer, or down) is rejected with "Connection is closed", and an
 * unhandled rejection would end the process with an error: each command's reply is handled here, unchanged for
 * whoever awaits it.
 */
function settleAdapterCommands(client: Redis): void {
  for (const name of ADAPTER_COMMANDS) {
    const send = (client[name] as (...args: unknown[]) => Promise<unknown>).bind(client);
    Object.assign(client, {
      [name]: (...args: unknown[]) => {
        const reply = send(...args);
        reply.catch(() => undefined);
        return reply;
      },
    });
  }
}

/** How long an ended session is remembered, to refuse a socket whose handshake was resolved just before it ended. */
const ENDED_SESSION_MEMORY_MS = 60_000;

/**
 * Live processing progress over socket.io at /socket.io: each signed-in connection joins
 * its owner's room, and an update goes to that room only. A socket lasts no longer than
 * its session: it is dropped when told the session ended, and at the session's end.
 */
export class ProgressHub {
  private readonly io: Server;
  private closed = false;
  private readonly adapterClients: Redis[] = [];
  /** Session id → when this node learnt it ended, oldest first. */
  private readonly endedSessions = new Map<string, number>();

  constructor(server: http.Server, options: ProgressHubOptions) {
    this.io = new Server(server, {
      path: "/socket.io",
      serveClient: false,
      allowRequest: (req, callback) => callback(null, options.isAllowedOrigin(req)),
    });
    if (options.redis) {
      // The shared client fails commands while disconnected and after a timeout; the adapter's must wait for the
      // connection instead (it does not handle a failed publish, and local sockets are served without Redis).
      const waiting = { enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined };
      const publisher = options.redis.duplicate(waiting);
      const subscriber = options.redis.duplicate(waiting);
      for (const client of [publisher, subscriber]) {
        client.on("error", () => undefined);
        settleAdapterCommands(client);
      }
      this.adapterClients.push(publisher, subscriber);
      this.io.adapter(createAdapter(publisher, subscriber, { key: "shoal:socket.io" }));
    }
    const { sessions } = options;
    this.io.use((socket, next) => {
      sessions.authenticate({ headers: socket.handshake.headers, auth: socket.handshake.auth as Record<string, unknown> }).then(
        (session) => {
          if (!session || this.endedSessions.has(session.sessionId)) {
            next(new Error("unauthenticated"));
            return;
          }
          socket.data.session = session;
          next();
        },
        () => next(new Error("unavailable")),
      );
    });
    this.io.on("connection", (socket) => {
      const { userId, sessionId, endsAt } = socket.data.session as SocketSession;
      // The session may have ended while the handshake was being resolved, before the socket could be found in its room.
      if (this.endedSessions.has(sessionId)) {
        socket.disconnect(true);
        return;
      }
      void socket.join([roomOf(userId), sessionRoomOf(sessionId)]);
      const stopWatching = watchSessionEnd(endsAt, { endOf: () => sessions.endOf(sessionId), ended: () => socket.disconnect(true) });
      socket.once("disconnect", stopWatching);
    });
  }

  /** These sessions have ended: their sockets on this node are disconnected (every api node is told the same). */
  endSessions(sessionIds: readonly string[]): void {
    if (sessionIds.length === 0) return; // no rooms would mean every socket
    const now = Date.now();
    for (const [sessionId, endedAt] of this.endedSessions) {
      if (now - endedAt < ENDED_SESSION_MEMORY_MS) break;
      this.endedSessions.delete(sessionId);
    }
    for (const sessionId of sessionIds) {
      this.endedSessions.delete(sessionId);
      this.endedSessions.set(sessionId, now);
    }
    this.io.local.in(sessionIds.map(sessionRoomOf)).disconnectSockets(true);
  }

  /** A worker's report to the owner's sockets; at `ready` or `failed` the item itself follows, as `ownerView` gives it. */
  async relay(update: ProgressUpdate, ownerView: (mediaId: string, ownerId: string) => Promise<MediaOutcome>): Promise<void> {
    this.publish(update);
    if (update.stage !== "ready" && update.stage !== "failed") return;
    const media = await ownerView(update.mediaId, update.ownerId);
    if (update.stage === "ready") this.ready(update.ownerId, media);
    else this.failed(update.ownerId, update.mediaId, media.reason ?? "processing_error");
  }

  publish(update: ProgressUpdate): void {
    this.toOwner(update.ownerId, SOCKET_EVENTS.progress, { mediaId: update.mediaId, stage: update.stage, percent: update.percent });
  }

  /** The item is ready: the owner gets it whole, as GET /api/media/:id shows it. */
  ready(ownerId: string, media: unknown): void {
    this.toOwner(ownerId, SOCKET_EVENTS.ready, { media });
  }

  /** Bytes of a resumable upload received so far (before it becomes a media item). */
  uploadProgress(ownerId: string, progress: { uploadId: string; offset: number; size: number | undefined }): void {
    this.toOwner(ownerId, SOCKET_EVENTS.uploadProgress, progress);
  }

  failed(ownerId: string, mediaId: string, reason: string): void {
    this.toOwner(ownerId, SOCKET_EVENTS.failed, { mediaId, reason });
  }

  private toOwner(ownerId: string, event: string, payload: unknown): void {
    // Once closed, the adapter's Redis clients are gone: a late report (a tus upload's throttled progress) would reject unheard.
    if (this.closed) return;
    this.io.to(roomOf(ownerId)).emit(event, payload);
  }

  async close(): Promise<void> {
    this.closed = true;
    // This node's connections only (a disconnectSockets through the Redis adapter would reach every node's), and
    // closed as transports rather than told "disconnect": clients then reconnect, through the load balancer, to
    // another node. The http server belongs to the front door; only socket.io's own resources are released here.
    await new Promise<void>((resolve) => {
      this.io.engine.close();
      resolve();
    });
    for (const client of this.adapterClients) client.disconnect();
  }
}

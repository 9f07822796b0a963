import type http from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import type { Redis } from "ioredis";
import { Server } from "socket.io";

export interface ProgressUpdate {
  readonly mediaId: string;
  readonly ownerId: string;
  readonly stage: string;
  readonly percent: number;
}

export interface ProgressHubOptions {
  /** The signed-in user behind a handshake (session cookie or `auth.token`), or undefined. */
  readonly authenticate: (handshake: { headers: http.IncomingHttpHeaders; auth: Record<string, unknown> }) => Promise<string | undefined>;
  /** Whether a browser may connect from the handshake's Origin (a WebSocket is not covered by the same-origin policy). */
  readonly isAllowedOrigin: (req: http.IncomingMessage) => boolean;
  /** Cluster mode: rooms shared through Redis, so any api node reaches any client. */
  readonly redis: Redis | undefined;
}

/** The broker event workers emit; the hub turns it into socket events. */
export const PROGRESS_EVENT = "media.progress";

/** What the owner's sockets receive (the API contract). */
export const SOCKET_EVENTS = {
  progress: "media:progress",
  ready: "media:ready",
  failed: "media:failed",
  uploadProgress: "upload:progress",
} as const;

const roomOf = (userId: string) => `user:${userId}`;

/**
 * Live processing progress over socket.io at /socket.io: each signed-in connection joins
 * its owner's room, and an update goes to that room only.
 */
export class ProgressHub {
  private readonly io: Server;
  private readonly adapterClients: Redis[] = [];

  constructor(server: http.Server, options: ProgressHubOptions) {
    this.io = new Server(server, {
      path: "/socket.io",
      serveClient: false,
      allowRequest: (req, callback) => callback(null, options.isAllowedOrigin(req)),
    });
    if (options.redis) {
      // The shared client fails commands while disconnected; the adapter's must wait for the connection instead.
      const publisher = options.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
      const subscriber = options.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
      for (const client of [publisher, subscriber]) client.on("error", () => undefined);
      this.adapterClients.push(publisher, subscriber);
      this.io.adapter(createAdapter(publisher, subscriber, { key: "shoal:socket.io" }));
    }
    this.io.use((socket, next) => {
      options.authenticate({ headers: socket.handshake.headers, auth: socket.handshake.auth as Record<string, unknown> }).then(
        (userId) => {
          if (!userId) {
            next(new Error("unauthenticated"));
            return;
          }
          socket.data.userId = userId;
          void socket.join(roomOf(userId));
          next();
        },
        () => next(new Error("unavailable")),
      );
    });
  }

  publish(update: ProgressUpdate): void {
    this.io.to(roomOf(update.ownerId)).emit(SOCKET_EVENTS.progress, {
      mediaId: update.mediaId,
      stage: update.stage,
      percent: update.percent,
    });
  }

  /** The item is ready: the owner gets it whole, as GET /api/media/:id shows it. */
  ready(ownerId: string, media: unknown): void {
    this.io.to(roomOf(ownerId)).emit(SOCKET_EVENTS.ready, { media });
  }

  /** Bytes of a resumable upload received so far (before it becomes a media item). */
  uploadProgress(ownerId: string, progress: { uploadId: string; offset: number; size: number | undefined }): void {
    this.io.to(roomOf(ownerId)).emit(SOCKET_EVENTS.uploadProgress, progress);
  }

  failed(ownerId: string, mediaId: string, reason: string): void {
    this.io.to(roomOf(ownerId)).emit(SOCKET_EVENTS.failed, { mediaId, reason });
  }

  async close(): Promise<void> {
    this.io.disconnectSockets(true);
    // The http server belongs to the front door; only socket.io's own resources are released here.
    await new Promise<void>((resolve) => {
      this.io.engine.close();
      resolve();
    });
    for (const client of this.adapterClients) client.disconnect();
  }
}

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
  /** Origins a browser may connect from (a WebSocket is not covered by the same-origin policy). */
  readonly allowedOrigins: readonly string[];
  /** Cluster mode: rooms shared through Redis, so any api node reaches any client. */
  readonly redis: Redis | undefined;
}

export const PROGRESS_EVENT = "media.progress";

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
      allowRequest: (req, callback) => {
        const origin = req.headers.origin;
        callback(null, origin === undefined || options.allowedOrigins.includes(origin));
      },
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
    this.io.to(roomOf(update.ownerId)).emit(PROGRESS_EVENT, {
      mediaId: update.mediaId,
      stage: update.stage,
      percent: update.percent,
    });
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

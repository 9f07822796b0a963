/**
 * The tus handler outside a node: served by a plain HTTP server, with the signed-in user taken from an
 * `X-Test-Owner` header and the request id from `X-Test-Request`, and a logger that keeps what it is told.
 *
 *   const served = await serve((req, res) => uploads.handle(req, res));
 *   await fetch(`${served.baseUrl}/api/uploads`, { method: "POST", headers: { "X-Test-Owner": "u1", ... } });
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { TusUploadHooks, UploadLogger } from "../../lib/uploads/tus-uploads";

export const TUS_PATH = "/api/uploads";

export interface LogEntry {
  readonly level: "error" | "warn" | "info";
  readonly message: string;
  readonly details: readonly unknown[];
}

export function recordingLogger(): UploadLogger & { readonly entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    error: (message, ...details) => entries.push({ level: "error", message, details }),
    warn: (message, ...details) => entries.push({ level: "warn", message, details }),
    info: (message, ...details) => entries.push({ level: "info", message, details }),
  };
}

export function ownerOf(req: http.IncomingMessage): { id: string } | undefined {
  const id = req.headers["x-test-owner"];
  return typeof id === "string" ? { id } : undefined;
}

export function requestIdOf(req: http.IncomingMessage): string | undefined {
  const id = req.headers["x-test-request"];
  return typeof id === "string" ? id : undefined;
}

/** Hooks that accept everything and remember the reservations made and released. */
export function acceptingHooks(): TusUploadHooks & { readonly reserved: string[]; readonly released: string[] } {
  const reserved: string[] = [];
  const released: string[] = [];
  return {
    reserved,
    released,
    ownerOf,
    beforeCreate: async (_owner, reservation) => {
      reserved.push(reservation.reservationId);
    },
    accept: async () => ({ mediaId: "m_accepted" }),
    release: async (reservationId) => {
      released.push(reservationId);
    },
    recordOutcome: async () => undefined,
  };
}

export interface Served {
  readonly baseUrl: string;
  close(): Promise<void>;
}

export async function serve(handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Served> {
  const server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A tus request as a signed-in owner: Tus-Resumable, the owner and a request id. */
export function tusFetch(baseUrl: string, owner: string, method: string, urlPath: string, headers: Record<string, string> = {}, body?: Uint8Array) {
  return fetch(`${baseUrl}${urlPath}`, {
    method,
    headers: { "Tus-Resumable": "1.0.0", "X-Test-Owner": owner, ...headers },
    body,
  });
}

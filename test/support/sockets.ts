/**
 * socket.io clients for tests, as the web page would hold them (no automatic reconnection, so that a
 * dropped socket stays dropped), and the session endings they are tested against.
 *
 *   const watched = await openSocket(node.baseUrl, token);      // resolves once connected
 *   await signOut(node.baseUrl, token);
 *   expect(await within(watched.disconnected, 10_000, "disconnect")).toMatchObject({ reason: "io server disconnect" });
 *   expect(await refusal(node.baseUrl, token)).toMatch(/unauthenticated/);
 *   closeAllSockets();                                          // afterAll
 */
import type { Socket } from "socket.io-client";
import { io } from "socket.io-client";
import type { Processor } from "../../lib/jobs/processor";
import { HttpClient } from "./http-client";
import type { SignedInBody } from "./http-client";
import { fixture } from "./uploads";

export interface Disconnect {
  readonly reason: string;
  /** Date.now() when the client saw it. */
  readonly at: number;
}

export interface WatchedSocket {
  readonly socket: Socket;
  /** Settles at the first disconnect. */
  readonly disconnected: Promise<Disconnect>;
  /** What the socket received of the owner's media events, in order. */
  readonly received: ReadonlyArray<{ readonly event: string; readonly payload: { media?: { id: string; originalUrl?: string }; mediaId?: string } }>;
}

const MEDIA_EVENTS = ["media:progress", "media:ready", "media:failed"] as const;
const opened = new Set<Socket>();

function socketFor(baseUrl: string, token: string): Socket {
  const socket = io(baseUrl, { path: "/socket.io", auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
  opened.add(socket);
  return socket;
}

/** A socket with the session behind `token`, once connected; rejects with the server's refusal. */
export async function openSocket(baseUrl: string, token: string): Promise<WatchedSocket> {
  const socket = socketFor(baseUrl, token);
  const received: Array<WatchedSocket["received"][number]> = [];
  for (const event of MEDIA_EVENTS) socket.on(event, (payload: WatchedSocket["received"][number]["payload"]) => received.push({ event, payload }));
  const disconnected = new Promise<Disconnect>((resolve) => socket.once("disconnect", (reason) => resolve({ reason, at: Date.now() })));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
  return { socket, disconnected, received };
}

/** Why a socket with `token` is refused (the connect_error message); throws if it connects. */
export async function refusal(baseUrl: string, token: string): Promise<string> {
  const socket = socketFor(baseUrl, token);
  try {
    return await new Promise<string>((resolve, reject) => {
      socket.once("connect", () => reject(new Error("the socket was accepted")));
      socket.once("connect_error", (error) => resolve(error.message));
    });
  } finally {
    socket.disconnect();
  }
}

export function closeAllSockets(): void {
  for (const socket of opened) socket.disconnect();
  opened.clear();
}

/** The promise's value, or a failure naming what did not happen within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Completes every job at once without storing anything: these tests are about who hears of it, not processing. */
export const instantProcessor: Processor = async () => ({ width: 640, height: 480 });

function api(baseUrl: string): HttpClient {
  return new HttpClient(baseUrl, { origin: null });
}

/** A new session of the account (bearer token). */
export async function signIn(baseUrl: string, login: string, password: string): Promise<string> {
  const answer = await api(baseUrl).post<SignedInBody>("/api/auth/login", { login, password });
  expect({ status: answer.status, text: answer.status === 200 ? "" : answer.text }).toEqual({ status: 200, text: "" });
  return answer.body.token;
}

export async function signOut(baseUrl: string, token: string): Promise<void> {
  expect((await api(baseUrl).post("/api/auth/logout", undefined, { bearer: token })).status).toBe(204);
}

export async function changePassword(baseUrl: string, token: string, currentPassword: string): Promise<void> {
  const answer = await api(baseUrl).put("/api/users/me/password", { currentPassword, newPassword: `${currentPassword} but changed` }, { bearer: token });
  expect({ status: answer.status, text: answer.text }).toEqual({ status: 204, text: "" });
}

export async function deleteAccount(baseUrl: string, token: string, password: string): Promise<void> {
  const answer = await api(baseUrl).delete("/api/users/me", { password }, { bearer: token });
  expect({ status: answer.status, text: answer.text }).toEqual({ status: 204, text: "" });
}

/** GET /api/users/me with the token: 200 while its session lives, 401 after. */
export async function meStatus(baseUrl: string, token: string): Promise<number> {
  return (await api(baseUrl).get("/api/users/me", { bearer: token })).status;
}

/** A private image upload (multipart); returns the new item's id. */
export async function uploadImage(baseUrl: string, token: string): Promise<string> {
  const form = new FormData();
  form.append("file", new Blob([fixture("image_formats/png_rgba_alpha.png")], { type: "image/png" }), "private.png");
  const answer = await fetch(`${baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  expect(answer.status).toBe(201);
  return ((await answer.json()) as { media: { id: string } }).media.id;
}

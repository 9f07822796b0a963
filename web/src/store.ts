import { useEffect, useState } from "preact/hooks";
import { io } from "socket.io-client";
import type { Socket } from "socket.io-client";
import { api, setCsrfToken } from "./api";
import type { Media, User } from "./api";
import { RANGE_PRESETS } from "./stats-api";
import type { StatsRange } from "./stats-api";

/** A tiny observable value, shared by components through a hook. */
export class Store<T> {
  private readonly listeners = new Set<(value: T) => void>();
  constructor(private current: T) {}
  get value(): T {
    return this.current;
  }
  set(value: T): void {
    this.current = value;
    for (const listener of this.listeners) listener(value);
  }
  subscribe(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export function useStore<T>(store: Store<T>): T {
  const [value, setValue] = useState(store.value);
  useEffect(() => {
    setValue(store.value);
    return store.subscribe(setValue);
  }, [store]);
  return value;
}

/** undefined while the page asks who is signed in, null when nobody is. */
export const session = new Store<User | null | undefined>(undefined);

export async function loadSession(): Promise<void> {
  try {
    const { user } = await api.me();
    const { csrfToken } = await api.csrf();
    setCsrfToken(csrfToken);
    signedIn(user);
  } catch {
    setCsrfToken(undefined);
    session.set(null);
  }
}

export function signedIn(user: User, csrfToken?: string): void {
  if (csrfToken) setCsrfToken(csrfToken);
  session.set(user);
  connectRealtime();
}

export function signedOut(): void {
  setCsrfToken(undefined);
  socket?.disconnect();
  socket = undefined;
  session.set(null);
}

// ---- live progress over socket.io ----

export type MediaEvent =
  | { type: "progress"; mediaId: string; stage: string; percent: number }
  | { type: "ready"; media: Media }
  | { type: "failed"; mediaId: string; reason: string };

let socket: Socket | undefined;
const mediaListeners = new Set<(event: MediaEvent) => void>();
/** The latest event per item, for rows that learn their media id after processing began. */
const latest = new Map<string, MediaEvent>();

function emit(event: MediaEvent): void {
  latest.set(event.type === "ready" ? event.media.id : event.mediaId, event);
  for (const listener of mediaListeners) listener(event);
}

export function connectRealtime(): void {
  if (socket) return;
  socket = io({ path: "/socket.io", withCredentials: true });
  socket.on("media:progress", (data: { mediaId: string; stage: string; percent: number }) => emit({ type: "progress", ...data }));
  socket.on("media:ready", (data: { media: Media }) => emit({ type: "ready", media: data.media }));
  socket.on("media:failed", (data: { mediaId: string; reason: string }) => emit({ type: "failed", ...data }));
}

export function onMediaEvent(listener: (event: MediaEvent) => void): () => void {
  mediaListeners.add(listener);
  return () => mediaListeners.delete(listener);
}

export function latestEvent(mediaId: string): MediaEvent | undefined {
  return latest.get(mediaId);
}

// ---- routing: #/path, and /media/:id when the server's fallback served the page there ----

export type Route =
  | { name: "feed" }
  | { name: "library" }
  | { name: "upload" }
  | { name: "account" }
  | { name: "signin" }
  | { name: "signup" }
  | { name: "media"; id: string }
  | { name: "myStats" }
  | { name: "adminStats"; range: StatsRange }
  | { name: "adminReport"; range: StatsRange }
  | { name: "notfound" };

/** The range of a stats page's query: a known preset, or a valid from/to pair; the last 7 days otherwise. */
function rangeFrom(query: URLSearchParams): StatsRange {
  const preset = RANGE_PRESETS.find((known) => known.value === query.get("range"));
  if (preset) return { preset: preset.value };
  const from = query.get("from");
  const to = query.get("to");
  if (from && to && !Number.isNaN(Date.parse(from)) && !Number.isNaN(Date.parse(to)) && Date.parse(from) < Date.parse(to)) return { from, to };
  return { preset: "7d" };
}

export function parseRoute(): Route {
  let [path, search] = location.hash.replace(/^#/, "").split("?", 2) as [string, string | undefined];
  if (!path && location.pathname !== "/") [path, search] = [location.pathname, location.search.slice(1)];
  const parts = path.split("/").filter(Boolean);
  const [first, second] = parts;
  if (!first) return { name: "feed" };
  if (first === "admin" && parts.length === 2 && (second === "stats" || second === "report"))
    return { name: second === "stats" ? "adminStats" : "adminReport", range: rangeFrom(new URLSearchParams(search ?? "")) };
  if (parts.length === 1 && first === "stats") return { name: "myStats" };
  if (first === "media" && second) return { name: "media", id: decodeURIComponent(second) };
  if (parts.length === 1 && ["feed", "library", "upload", "account", "signin", "signup"].includes(first)) return { name: first } as Route;
  return { name: "notfound" };
}

export const route = new Store<Route>(parseRoute());
window.addEventListener("hashchange", () => route.set(parseRoute()));

export function navigate(path: string): void {
  if (location.pathname !== "/") history.replaceState(null, "", `/#${path}`);
  location.hash = path;
  route.set(parseRoute());
}

/** The Shoal REST API as the page uses it: JSON in and out, the CSRF token on every change. */

export interface User {
  id: string;
  username: string;
  email?: string;
  role: "user" | "admin";
  quotaBytes?: number;
  usedBytes?: number;
}

export interface Variant {
  name: string;
  mime: string;
  width: number | null;
  height: number | null;
  bytes: number;
  url: string;
}

export type Visibility = "private" | "unlisted" | "public";
/** The public feed's orders: newest first, or most viewed first. */
export type FeedSort = "newest" | "popular";
export type Status = "uploaded" | "processing" | "ready" | "failed";

export interface Media {
  id: string;
  kind: "image" | "video" | "audio";
  status: Status;
  reason: string | null;
  title: string | null;
  description: string | null;
  visibility: Visibility;
  mime: string;
  bytes: number;
  width: number | null;
  height: number | null;
  durationSeconds: number | null;
  placeholder: string | null;
  variants: Variant[];
  originalUrl: string | null;
  progress: { stage: string; percent: number } | null;
  owner: { id: string; username: string | null };
  createdAt: string;
  updatedAt: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** An error the API answered with: its status, stable code, message and per-field problems. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string> = {},
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

const CSRF_KEY = "shoal.csrf";

export function csrfToken(): string | undefined {
  return sessionStorage.getItem(CSRF_KEY) ?? undefined;
}

export function setCsrfToken(token: string | undefined): void {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

/** Turns a non-2xx response body into an ApiError. */
export function errorFrom(status: number, bodyText: string, retryAfter?: string | null): ApiError {
  let parsed: { error?: { code?: string; message?: string; fields?: Record<string, string> } } = {};
  try {
    parsed = JSON.parse(bodyText) as typeof parsed;
  } catch {
    // not JSON: fall through to a generic message
  }
  const error = parsed.error ?? {};
  const seconds = retryAfter ? Number(retryAfter) : undefined;
  return new ApiError(
    status,
    error.code ?? `http_${status}`,
    error.message ?? (status >= 500 ? "Something went wrong on our side. Try again shortly." : `The request failed (${status}).`),
    error.fields ?? {},
    seconds !== undefined && Number.isFinite(seconds) ? seconds : undefined,
  );
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") {
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  let response: Response;
  try {
    response = await fetch(`/api${path}`, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "Shoal could not be reached. Check your connection and try again.");
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  if (!response.ok) throw errorFrom(response.status, text, response.headers.get("Retry-After"));
  return JSON.parse(text) as T;
}

export const api = {
  register: (username: string, email: string, password: string) =>
    call<{ user: User; csrfToken: string }>("POST", "/auth/register", { username, email, password }),
  login: (login: string, password: string) => call<{ user: User; csrfToken: string }>("POST", "/auth/login", { login, password }),
  logout: () => call<void>("POST", "/auth/logout"),
  csrf: () => call<{ csrfToken: string }>("GET", "/auth/csrf"),
  me: () => call<{ user: User }>("GET", "/users/me"),
  changePassword: (currentPassword: string, newPassword: string) =>
    call<void>("PUT", "/users/me/password", { currentPassword, newPassword }),
  deleteAccount: (password: string) => call<void>("DELETE", "/users/me", { password }),
  list: (scope: "mine" | "public", cursor?: string | null, sort: FeedSort = "newest") =>
    call<Page<Media>>("GET", `/media?scope=${scope}${sort === "popular" ? "&sort=popular" : ""}&limit=24${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`),
  media: (id: string) => call<{ media: Media }>("GET", `/media/${encodeURIComponent(id)}`),
  update: (id: string, changes: { title?: string; description?: string; visibility?: Visibility }) =>
    call<{ media: Media }>("PATCH", `/media/${encodeURIComponent(id)}`, changes),
  remove: (id: string) => call<void>("DELETE", `/media/${encodeURIComponent(id)}`),
  uploadResult: (uploadId: string) => call<{ media: Media }>("GET", `/uploads/${encodeURIComponent(uploadId)}/media`),
};

const REASONS: Record<string, string> = {
  too_large: "The file is too large.",
  quota_exceeded: "There is not enough space left in your storage quota.",
  unsupported_type: "This type of file is not supported.",
  unsupported_format: "This file's format is not supported.",
  image_too_large: "The image has too many pixels.",
  pixel_limit: "The image has too many pixels.",
  image_header_too_far: "The image's size is not where images keep it, so it cannot be checked safely.",
  invalid_metadata: "The file's name or title could not be read.",
  too_many_frames: "The animation has too many frames.",
  too_long: "The recording is too long (30 minutes at most).",
  timeout: "Processing took too long and was stopped.",
  processing_error: "The file could not be processed.",
  empty_upload: "The file is empty.",
  rate_limited: "Too many uploads for now; try again later.",
};

/** A failure reason code in plain words. */
export function reasonText(reason: string | null | undefined): string {
  if (!reason) return "The file could not be processed.";
  return REASONS[reason] ?? `The file could not be processed (${reason.replace(/_/g, " ")}).`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatWait(seconds: number): string {
  const at = new Date(Date.now() + seconds * 1000);
  const minutes = Math.ceil(seconds / 60);
  const span = seconds < 60 ? `${seconds} seconds` : minutes === 1 ? "a minute" : `${minutes} minutes`;
  return `${span} (at ${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })})`;
}

export function variant(media: Media, ...names: string[]): Variant | undefined {
  for (const name of names) {
    const found = media.variants.find((item) => item.name === name);
    if (found) return found;
  }
  return undefined;
}

import type { DeliverySettings } from "../../config/settings";
import { LruCache } from "../cache/lru-cache";
import type { ObjectStorage } from "../storage/object-storage";
import { signingWindow } from "../storage/signed-url";
import { safeDownloadName } from "./download-name";
import type { MediaRow, MediaVisibility } from "./media-view";

/** Signed URLs kept per node: a few pages of a busy feed (48 URLs a page), a few hundred bytes each. */
export const SIGNED_URL_CACHE_ENTRIES = 10_000;

export interface DeliveryOptions {
  /** Milliseconds since the epoch; replaceable in tests. */
  readonly now?: () => number;
  readonly cacheEntries?: number;
}

/**
 * The URLs browsers fetch media bytes from. Private and unlisted items get signed,
 * expiring URLs (a leaked link stops working); public items are served from the public
 * base URL (a CDN or public bucket) when one is configured, else signed like the rest.
 *
 * A signed URL is the same all through its signing window (signingWindow), so it is signed once per
 * window and kept in memory: a page of 24 items does not presign 48 URLs on every answer.
 */
export class Delivery {
  private readonly now: () => number;
  private readonly signed: LruCache<Promise<string>>;

  constructor(
    private readonly storage: Pick<ObjectStorage, "signedUrl">,
    private readonly settings: DeliverySettings,
    options: DeliveryOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.signed = new LruCache(options.cacheEntries ?? SIGNED_URL_CACHE_ENTRIES);
  }

  objectUrl(key: string, visibility: MediaVisibility): Promise<string> {
    if (visibility === "public" && this.settings.publicBaseUrl) return Promise.resolve(`${this.settings.publicBaseUrl}/${key}`);
    return this.signedUrl(key, undefined);
  }

  /** The original as uploaded, offered as a download under a cleaned-up version of the client's file name. */
  originalUrl(row: MediaRow): Promise<string> {
    return this.signedUrl(row.original_key, safeDownloadName(row.original_name, row.original_key, `${row.kind}-${row.id}`));
  }

  private signedUrl(key: string, downloadName: string | undefined): Promise<string> {
    const ttl = this.settings.signedUrlTtlSeconds;
    const window = signingWindow(Math.floor(this.now() / 1000), ttl);
    // JSON: neither a key nor a download name can make two different entries look alike.
    const cacheKey = JSON.stringify([window.signedAt, key, downloadName ?? null]);
    const cached = this.signed.get(cacheKey);
    if (cached !== undefined) return cached;
    const url = this.storage.signedUrl(key, { expiresInSeconds: ttl, ...(downloadName === undefined ? {} : { downloadName }) });
    this.signed.set(cacheKey, url);
    // A failure is not remembered: the next request signs again.
    url.catch(() => this.signed.deleteIf(cacheKey, url));
    return url;
  }
}

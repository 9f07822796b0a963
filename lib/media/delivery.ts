import type { DeliverySettings } from "../../config/settings";
import type { ObjectStorage } from "../storage/object-storage";
import { safeDownloadName } from "./download-name";
import type { MediaRow, MediaVisibility } from "./media-view";

/**
 * The URLs browsers fetch media bytes from. Private and unlisted items get signed,
 * expiring URLs (a leaked link stops working); public items are served from the public
 * base URL (a CDN or public bucket) when one is configured, else signed like the rest.
 */
export class Delivery {
  constructor(
    private readonly storage: Pick<ObjectStorage, "signedUrl">,
    private readonly settings: DeliverySettings,
  ) {}

  objectUrl(key: string, visibility: MediaVisibility): Promise<string> {
    if (visibility === "public" && this.settings.publicBaseUrl) return Promise.resolve(`${this.settings.publicBaseUrl}/${key}`);
    return this.storage.signedUrl(key, { expiresInSeconds: this.settings.signedUrlTtlSeconds });
  }

  /** The original as uploaded, offered as a download under a cleaned-up version of the client's file name. */
  originalUrl(row: MediaRow): Promise<string> {
    return this.storage.signedUrl(row.original_key, {
      expiresInSeconds: this.settings.signedUrlTtlSeconds,
      downloadName: safeDownloadName(row.original_name, row.original_key, `${row.kind}-${row.id}`),
    });
  }
}

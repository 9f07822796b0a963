import { Delivery } from "../../lib/media/delivery";
import type { MediaRow } from "../../lib/media/media-view";
import type { SignedUrlOptions } from "../../lib/storage/object-storage";

const ROW = {
  id: "AbCdEfGhIjKlMnOpQrStU",
  kind: "video",
  original_key: "media/AbCdEfGhIjKlMnOpQrStU/original.mp4",
  original_name: "../My Clip.MOV",
} as MediaRow;

function recordingStorage() {
  const calls: Array<[string, SignedUrlOptions]> = [];
  return {
    calls,
    storage: {
      async signedUrl(key: string, options: SignedUrlOptions): Promise<string> {
        calls.push([key, options]);
        return `signed:${key}`;
      },
    },
  };
}

/** A multiple of 300: the start of a signing window of a 600-second lifetime. */
const WINDOW_START_MS = 1_800_000_000_000;

describe("delivery URLs", () => {
  test("private and unlisted objects are always signed, with the configured lifetime", async () => {
    const { calls, storage } = recordingStorage();
    const delivery = new Delivery(storage, { signedUrlTtlSeconds: 600, publicBaseUrl: "https://cdn.example" });
    expect(await delivery.objectUrl("media/x/thumb.webp", "private")).toBe("signed:media/x/thumb.webp");
    expect(await delivery.objectUrl("media/y/thumb.webp", "unlisted")).toBe("signed:media/y/thumb.webp");
    expect(calls).toEqual([
      ["media/x/thumb.webp", { expiresInSeconds: 600 }],
      ["media/y/thumb.webp", { expiresInSeconds: 600 }],
    ]);
  });

  test("a URL is signed once per signing window, and again in the next one", async () => {
    const { calls, storage } = recordingStorage();
    let now = WINDOW_START_MS;
    const delivery = new Delivery(storage, { signedUrlTtlSeconds: 600, publicBaseUrl: undefined }, { now: () => now });
    await delivery.objectUrl("media/x/thumb.webp", "private");
    now += 299_000;
    await delivery.objectUrl("media/x/thumb.webp", "public");
    expect(calls).toHaveLength(1);
    now += 1_000;
    await delivery.objectUrl("media/x/thumb.webp", "private");
    expect(calls).toHaveLength(2);
  });

  test("keeps at most the configured number of URLs, dropping the least recently used", async () => {
    const { calls, storage } = recordingStorage();
    const delivery = new Delivery(storage, { signedUrlTtlSeconds: 600, publicBaseUrl: undefined }, { now: () => WINDOW_START_MS, cacheEntries: 2 });
    await delivery.objectUrl("media/a/thumb.webp", "private");
    await delivery.objectUrl("media/b/thumb.webp", "private");
    await delivery.objectUrl("media/a/thumb.webp", "private");
    await delivery.objectUrl("media/c/thumb.webp", "private");
    await delivery.objectUrl("media/a/thumb.webp", "private");
    expect(calls.map(([key]) => key)).toEqual(["media/a/thumb.webp", "media/b/thumb.webp", "media/c/thumb.webp"]);
    await delivery.objectUrl("media/b/thumb.webp", "private");
    expect(calls).toHaveLength(4);
  });

  test("a failed signing is not remembered", async () => {
    let failing = true;
    const delivery = new Delivery(
      { signedUrl: async (key) => (failing ? Promise.reject(new Error("store unreachable")) : `signed:${key}`) },
      { signedUrlTtlSeconds: 600, publicBaseUrl: undefined },
      { now: () => WINDOW_START_MS },
    );
    await expect(delivery.objectUrl("media/a/thumb.webp", "private")).rejects.toThrow("store unreachable");
    failing = false;
    expect(await delivery.objectUrl("media/a/thumb.webp", "private")).toBe("signed:media/a/thumb.webp");
  });

  test("public objects come from the public base URL when there is one, else signed", async () => {
    const { calls, storage } = recordingStorage();
    expect(await new Delivery(storage, { signedUrlTtlSeconds: 600, publicBaseUrl: "https://cdn.example" }).objectUrl("media/x/a.webp", "public")).toBe(
      "https://cdn.example/media/x/a.webp",
    );
    expect(calls).toEqual([]);
    expect(await new Delivery(storage, { signedUrlTtlSeconds: 60, publicBaseUrl: undefined }).objectUrl("media/x/a.webp", "public")).toBe(
      "signed:media/x/a.webp",
    );
  });

  test("the original is always signed (even for public items) and offered under a safe name with the stored extension", async () => {
    const { calls, storage } = recordingStorage();
    const delivery = new Delivery(storage, { signedUrlTtlSeconds: 900, publicBaseUrl: "https://cdn.example" });
    expect(await delivery.originalUrl({ ...ROW, visibility: "public" })).toBe(`signed:${ROW.original_key}`);
    expect(calls).toEqual([[ROW.original_key, { expiresInSeconds: 900, downloadName: "My Clip.mp4" }]]);
    await delivery.originalUrl({ ...ROW, original_name: null });
    expect(calls[1]?.[1].downloadName).toBe(`video-${ROW.id}.mp4`);
  });
});

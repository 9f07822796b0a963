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

describe("delivery URLs", () => {
  test("private and unlisted objects are always signed, with the configured lifetime", async () => {
    const { calls, storage } = recordingStorage();
    const delivery = new Delivery(storage, { signedUrlTtlSeconds: 600, publicBaseUrl: "https://cdn.example" });
    expect(await delivery.objectUrl("media/x/thumb.webp", "private")).toBe("signed:media/x/thumb.webp");
    expect(await delivery.objectUrl("media/x/thumb.webp", "unlisted")).toBe("signed:media/x/thumb.webp");
    expect(calls).toEqual([
      ["media/x/thumb.webp", { expiresInSeconds: 600 }],
      ["media/x/thumb.webp", { expiresInSeconds: 600 }],
    ]);
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

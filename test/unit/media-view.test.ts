import { toMediaJson } from "../../lib/media/media-view";
import type { MediaRow } from "../../lib/media/media-view";

const ROW: MediaRow = {
  id: "AbCdEfGhIjKlMnOpQrStU",
  owner_id: "01JD3Z5W7Q9XK4B1N8M6P2R0ST",
  kind: "image",
  title: "Harbour",
  description: null,
  visibility: "unlisted",
  status: "uploaded",
  reason: null,
  original_key: "media/AbCdEfGhIjKlMnOpQrStU/original.jpg",
  bytes: 123_456,
  mime: "image/jpeg",
  sha256: "a".repeat(64),
  width: null,
  height: null,
  duration_seconds: null,
  placeholder: null,
  declared_mime: "image/png",
  original_name: "secret-name.png",
  attempts: 0,
  progress_stage: null,
  progress_percent: null,
  created_at: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
  updated_at: Date.UTC(2026, 0, 2, 3, 4, 5, 7),
};

describe("MediaJSON", () => {
  test("has exactly the fields of the API contract, unknown ones null, in the contract's order", () => {
    const json = toMediaJson(ROW, { variants: [], originalUrl: null, username: "ada" });
    expect(Object.keys(json)).toEqual([
      "id", "kind", "status", "reason", "title", "description", "visibility", "mime", "bytes", "sha256", "width", "height",
      "durationSeconds", "placeholder", "variants", "originalUrl", "progress", "owner", "createdAt", "updatedAt",
    ]);
    expect(json).toEqual({
      id: ROW.id,
      kind: "image",
      status: "uploaded",
      reason: null,
      title: "Harbour",
      description: null,
      visibility: "unlisted",
      mime: "image/jpeg",
      bytes: 123_456,
      sha256: "a".repeat(64),
      width: null,
      height: null,
      durationSeconds: null,
      placeholder: null,
      variants: [],
      originalUrl: null,
      progress: null,
      owner: { id: ROW.owner_id, username: "ada" },
      createdAt: "2026-01-02T03:04:05.006Z",
      updatedAt: "2026-01-02T03:04:05.007Z",
    });
  });

  test("the client's declared type and file name are not shown (recorded, not part of the contract)", () => {
    const text = JSON.stringify(toMediaJson(ROW, { variants: [], originalUrl: null, username: null }));
    expect(text).not.toContain("secret-name");
    expect(text).not.toContain("image/png");
  });

  test("variants are listed by name with their URL; numbers that arrive as strings become numbers", () => {
    const variant = (name: string, width: number) => ({
      media_id: ROW.id,
      name,
      object_key: `media/${ROW.id}/${name}.webp`,
      mime: "image/webp",
      width,
      height: width / 2,
      bytes: width * 10,
      duration_seconds: null,
      created_at: 1,
      url: `/files/${name}`,
    });
    const json = toMediaJson(
      { ...ROW, bytes: "9007199254740993" as unknown as number, width: 800, height: 400, duration_seconds: 1.5 },
      { variants: [variant("thumb", 200), variant("large", 1600)], originalUrl: "/files/original", username: "ada" },
    );
    expect(json.variants).toEqual([
      { name: "large", mime: "image/webp", width: 1600, height: 800, bytes: 16_000, url: "/files/large" },
      { name: "thumb", mime: "image/webp", width: 200, height: 100, bytes: 2_000, url: "/files/thumb" },
    ]);
    expect(typeof json.bytes).toBe("number");
    expect([json.width, json.height, json.durationSeconds, json.originalUrl]).toEqual([800, 400, 1.5, "/files/original"]);
  });
});

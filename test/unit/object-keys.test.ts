import { IMMUTABLE_CACHE_CONTROL, originalKey, storedCacheControl, variantKey } from "../../lib/storage/object-keys";

const ID = "AbCdEfGhIjKlMnOpQrStU";

describe("object keys", () => {
  test("a variant gets a new key each time it is stored, under its item's prefix, ending in its extension", () => {
    const first = variantKey(ID, "thumb", "webp");
    const second = variantKey(ID, "thumb", "webp");
    expect(first).not.toBe(second);
    for (const key of [first, second]) expect(key).toMatch(new RegExp(`^media/${ID}/thumb\\.[A-Za-z0-9_-]{11}\\.webp$`));
    expect(variantKey(ID, "thumb", "webp", "AAAAAAAAAAA")).toBe(`media/${ID}/thumb.AAAAAAAAAAA.webp`);
  });

  test("versioned variants are stored immutable; originals and unversioned keys are not", () => {
    expect(storedCacheControl(variantKey(ID, "display-jpeg", "jpg"))).toBe(IMMUTABLE_CACHE_CONTROL);
    expect(IMMUTABLE_CACHE_CONTROL).toBe("public, max-age=31536000, immutable");
    expect(storedCacheControl(originalKey(ID, "jpg"))).toBeUndefined();
    expect(storedCacheControl(`media/${ID}/thumb.webp`)).toBeUndefined();
  });

  test("refuses what could not be a key", () => {
    expect(() => variantKey("../x", "thumb", "webp")).toThrow();
    expect(() => variantKey(ID, "Thumb", "webp")).toThrow();
    expect(() => variantKey(ID, "thumb", "webp", "short")).toThrow();
  });
});

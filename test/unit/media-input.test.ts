import { cleanDeclaredMime, cleanOriginalName, cleanText, truncate } from "../../lib/media/media-input";

describe("client-supplied text", () => {
  test("cleanText trims, composes to NFC, and turns blank into null", () => {
    expect(cleanText("  Cafe\u0301  ")).toBe("Café");
    expect(cleanText("   ")).toBeNull();
    expect(cleanText("")).toBeNull();
    expect(cleanText(null)).toBeNull();
    expect(cleanText(undefined)).toBeNull();
  });

  test("truncate counts code points and never splits a surrogate pair", () => {
    expect(truncate("abc", 5)).toBe("abc");
    expect(truncate("😀😀😀", 2)).toBe("😀😀");
  });

  test("file names are recorded without control or bidi characters, at most 255 code points", () => {
    expect(cleanOriginalName("photo\u0000\u202E.jpg\n")).toBe("photo.jpg");
    expect(Array.from(cleanOriginalName("é".repeat(300)) ?? "")).toHaveLength(255);
    expect(cleanOriginalName(undefined)).toBeNull();
    expect(cleanOriginalName(null)).toBeNull();
    expect(cleanOriginalName("\u0000")).toBeNull();
  });

  test("declared types are recorded in lower case without parameters, at most 100 characters", () => {
    expect(cleanDeclaredMime("Image/JPEG; charset=binary")).toBe("image/jpeg");
    expect(cleanDeclaredMime("x".repeat(300))).toHaveLength(100);
    expect(cleanDeclaredMime(undefined)).toBeNull();
    expect(cleanDeclaredMime(null)).toBeNull();
    expect(cleanDeclaredMime("")).toBeNull();
  });
});

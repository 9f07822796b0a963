import { safeDownloadName } from "../../lib/media/download-name";

const KEY = "media/AbCdEfGhIjKlMnOpQrStU/original.jpg";

describe("the original's download name", () => {
  test.each([
    ["a plain name keeps its base and gets the stored extension", "Holiday 2024.JPEG", "Holiday 2024.jpg"],
    ["the client's extension never survives", "invoice.pdf.exe", "invoice.pdf.jpg"],
    ["path parts are dropped (POSIX)", "../../etc/passwd", "passwd.jpg"],
    ["path parts are dropped (Windows)", "C:\\Users\\me\\photo.png", "photo.jpg"],
    ["quotes, semicolons and reserved characters go", 'a"b;c:d*e?f<g>h|i.png', "abcdefghi.jpg"],
    ["control and bidi-override characters go", "evil\u202Egpj.exe\u0000\n", "evilgpj.jpg"],
    ["runs of whitespace become one space", "  two   words\t.png", "two words.jpg"],
    ["leading dots go (no hidden files)", "...hidden.png", "hidden.jpg"],
    ["a name that is only an extension falls back", ".png", "image-AbCdEfGhIjKlMnOpQrStU.jpg"],
    ["no name falls back", null, "image-AbCdEfGhIjKlMnOpQrStU.jpg"],
    ["composed to NFC", "Cafe\u0301.png", "Café.jpg"],
  ])("%s", (_what, name, expected) => {
    expect(safeDownloadName(name, KEY, "image-AbCdEfGhIjKlMnOpQrStU")).toBe(expected);
  });

  test("long names are cut to 100 code points without splitting a character", () => {
    const name = `${"😀".repeat(150)}.png`;
    const result = safeDownloadName(name, KEY, "fallback");
    expect(Array.from(result.replace(/\.jpg$/, ""))).toHaveLength(100);
    expect(result).toBe(`${"😀".repeat(100)}.jpg`);
  });

  test("a key without an extension gives a name without one", () => {
    expect(safeDownloadName("clip.mov", "media/AbCdEfGhIjKlMnOpQrStU/original", "fallback")).toBe("clip");
  });
});

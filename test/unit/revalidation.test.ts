import { matchesIfNoneMatch, weakJsonEtag } from "../../lib/http/revalidation";

describe("ETags of API answers", () => {
  test("the same body gives the same weak tag, another body another", () => {
    const tag = weakJsonEtag({ media: { id: "a", title: "x" } });
    expect(tag).toMatch(/^W\/"[A-Za-z0-9_-]+"$/);
    expect(weakJsonEtag({ media: { id: "a", title: "x" } })).toBe(tag);
    expect(weakJsonEtag({ media: { id: "a", title: "y" } })).not.toBe(tag);
  });

  test("If-None-Match matches by weak comparison, in a list, or as *", () => {
    const tag = 'W/"abc"';
    expect(matchesIfNoneMatch('W/"abc"', tag)).toBe(true);
    expect(matchesIfNoneMatch('"abc"', tag)).toBe(true);
    expect(matchesIfNoneMatch('"x", W/"abc"', tag)).toBe(true);
    expect(matchesIfNoneMatch("*", tag)).toBe(true);
    expect(matchesIfNoneMatch('W/"abd"', tag)).toBe(false);
    expect(matchesIfNoneMatch(undefined, tag)).toBe(false);
  });
});

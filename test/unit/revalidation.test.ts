import { matchesIfNoneMatch, renderJsonAnswer } from "../../lib/http/revalidation";

describe("ETags of API answers", () => {
  test("the same body gives the same weak tag, another body another", () => {
    const tag = renderJsonAnswer({ media: { id: "a", title: "x" } }).etag;
    expect(tag).toMatch(/^W\/"[A-Za-z0-9_-]+"$/);
    expect(renderJsonAnswer({ media: { id: "a", title: "x" } }).etag).toBe(tag);
    expect(renderJsonAnswer({ media: { id: "a", title: "y" } }).etag).not.toBe(tag);
  });

  test("the body sent is the answer's JSON, in UTF-8", () => {
    const answer = { media: { id: "a", title: "Ålesund ☃" } };
    expect(JSON.parse(renderJsonAnswer(answer).body.toString("utf8"))).toEqual(answer);
  });

  test("the same answer object is rendered once; an equal copy gets the same bytes", () => {
    const answer = { items: [{ id: "a" }] };
    const first = renderJsonAnswer(answer);
    expect(renderJsonAnswer(answer)).toBe(first);
    const copy = renderJsonAnswer(structuredClone(answer));
    expect(copy).not.toBe(first);
    expect(copy.body.equals(first.body)).toBe(true);
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

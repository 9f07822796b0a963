import { CURSOR_PATTERN, decodeCursor, decodePopularCursor, encodeCursor, encodePopularCursor, pageOf, popularPageOf } from "../../lib/media/cursor";

const ID_A = "AbCdEfGhIjKlMnOpQrStU";
const ID_B = "zzzzzzzzzzzzzzzzzzzz_";

describe("listing cursors", () => {
  test("encode and decode are inverse, and the cursor is URL-safe and passes the params pattern", () => {
    const position = { createdAt: 1_764_000_000_123, id: ID_A };
    const cursor = encodeCursor(position);
    expect(cursor).toMatch(CURSOR_PATTERN);
    expect(encodeURIComponent(cursor)).toBe(cursor);
    expect(decodeCursor(cursor)).toEqual(position);
  });

  test.each([
    ["empty", ""],
    ["not base64url", "a+b/c="],
    ["not JSON", Buffer.from("hello").toString("base64url")],
    ["an object", Buffer.from(JSON.stringify({ createdAt: 1, id: ID_A })).toString("base64url")],
    ["three items", Buffer.from(JSON.stringify([1, ID_A, 3])).toString("base64url")],
    ["a string time", Buffer.from(JSON.stringify(["1", ID_A])).toString("base64url")],
    ["a negative time", Buffer.from(JSON.stringify([-1, ID_A])).toString("base64url")],
    ["a fractional time", Buffer.from(JSON.stringify([1.5, ID_A])).toString("base64url")],
    ["an unsafe integer", Buffer.from(JSON.stringify([2 ** 60, ID_A])).toString("base64url")],
    ["a short id", Buffer.from(JSON.stringify([1, "abc"])).toString("base64url")],
    ["an id with other characters", Buffer.from(JSON.stringify([1, "AbCdEfGhIjKlMnOpQrS%'"])).toString("base64url")],
  ])("a cursor that is %s is refused", (_what, cursor) => {
    expect(decodeCursor(cursor)).toBeUndefined();
  });

  test("pageOf shows `limit` rows and points after the last one only when a further row was fetched", () => {
    const rows = [
      { created_at: 30, id: ID_B },
      { created_at: 30, id: ID_A },
      { created_at: 10, id: ID_B },
    ];
    const full = pageOf(rows, 2);
    expect(full.rows).toEqual(rows.slice(0, 2));
    expect(decodeCursor(full.next ?? "")).toEqual({ createdAt: 30, id: ID_A });

    expect(pageOf(rows, 3)).toEqual({ rows, next: null });
    expect(pageOf(rows.slice(0, 2), 2)).toEqual({ rows: rows.slice(0, 2), next: null });
    expect(pageOf([], 5)).toEqual({ rows: [], next: null });
  });

  test("popular cursors: encode and decode are inverse, and neither order takes the other's cursors", () => {
    const position = { views: 1234, id: ID_A };
    const cursor = encodePopularCursor(position);
    expect(cursor).toMatch(CURSOR_PATTERN);
    expect(decodePopularCursor(cursor)).toEqual(position);
    expect(decodeCursor(cursor)).toBeUndefined();
    expect(decodePopularCursor(encodeCursor({ createdAt: 1234, id: ID_A }))).toBeUndefined();
  });

  test.each([
    ["without its tag", Buffer.from(JSON.stringify([1, 2, ID_A])).toString("base64url")],
    ["with another tag", Buffer.from(JSON.stringify(["time", 2, ID_A])).toString("base64url")],
    ["a negative count", Buffer.from(JSON.stringify(["views", -1, ID_A])).toString("base64url")],
    ["a fractional count", Buffer.from(JSON.stringify(["views", 1.5, ID_A])).toString("base64url")],
    ["a string count", Buffer.from(JSON.stringify(["views", "3", ID_A])).toString("base64url")],
    ["a short id", Buffer.from(JSON.stringify(["views", 3, "abc"])).toString("base64url")],
  ])("a popular cursor %s is refused", (_what, cursor) => {
    expect(decodePopularCursor(cursor)).toBeUndefined();
  });

  test("popularPageOf points after the last row shown by (views, id); counts read as strings (MariaDB bigint) are numbers", () => {
    const rows = [
      { views: 9, id: ID_B },
      { views: "4" as unknown as number, id: ID_A },
      { views: 4, id: ID_B },
    ];
    const full = popularPageOf(rows, 2);
    expect(full.rows).toEqual(rows.slice(0, 2));
    expect(decodePopularCursor(full.next ?? "")).toEqual({ views: 4, id: ID_A });
    expect(popularPageOf(rows, 3)).toEqual({ rows, next: null });
  });
});

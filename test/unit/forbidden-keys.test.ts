import { Readable } from "node:stream";
import { findForbiddenKey } from "../../lib/security/forbidden-keys";

describe("findForbiddenKey", () => {
  it("finds __proto__ and constructor keys of parsed JSON at any depth, naming their path", () => {
    expect(findForbiddenKey(JSON.parse('{"__proto__":{"admin":true},"title":"t"}'))).toBe("__proto__");
    expect(findForbiddenKey(JSON.parse('{"constructor":{"prototype":{"admin":true}}}'))).toBe("constructor");
    expect(findForbiddenKey(JSON.parse('{"title":"t","meta":{"tags":["a",{"__proto__":{}}]}}'))).toBe("meta.tags[1].__proto__");
    expect(findForbiddenKey(JSON.parse('[{"ok":1},{"constructor":1}]'))).toBe("[1].constructor");
  });

  it("finds a prototype that merging such a body into an object replaced", () => {
    const params = Object.assign({}, JSON.parse('{"__proto__":{"admin":true},"title":"t"}'), { id: "x" });
    expect(Object.keys(params)).toEqual(["title", "id"]);
    expect(findForbiddenKey(params)).toBe("__proto__");
    expect(findForbiddenKey(Object.assign({}, JSON.parse('{"__proto__":[1]}')))).toBe("__proto__");
    expect(findForbiddenKey(Object.assign({}, JSON.parse('{"__proto__":{"constructor":{"prototype":{}}}}')))).toBe("__proto__");
  });

  it("accepts ordinary data, null-prototype objects, and leaves class instances alone", () => {
    expect(findForbiddenKey({ title: "constructor", tags: ["__proto__"], nested: { proto: 1, constructors: 2 } })).toBeUndefined();
    expect(findForbiddenKey(Object.assign(Object.create(null) as object, { a: 1 }))).toBeUndefined();
    expect(findForbiddenKey({ when: new Date(), bytes: Buffer.from("x"), stream: Readable.from([]) })).toBeUndefined();
    expect(findForbiddenKey(undefined)).toBeUndefined();
    expect(findForbiddenKey("__proto__")).toBeUndefined();
  });

  it("walks deep nesting without running out of stack, and stops at cycles", () => {
    const deep = JSON.parse(`${"[".repeat(100_000)}{"__proto__":1}${"]".repeat(100_000)}`) as unknown;
    expect(findForbiddenKey(deep)).toMatch(/\[0\]\.__proto__$/);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(findForbiddenKey(cyclic)).toBeUndefined();
  });
});

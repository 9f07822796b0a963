import { normalizeEmail, usernameKey } from "../../lib/users/identity";

describe("usernameKey", () => {
  it("makes names that differ only in case the same account", () => {
    expect(usernameKey("Ada")).toBe("ada");
    expect(usernameKey("ADA")).toBe(usernameKey("ada"));
  });

  it("ignores surrounding whitespace but keeps inner characters", () => {
    expect(usernameKey("  ada_l \t\n")).toBe("ada_l");
    expect(usernameKey("ada.l")).not.toBe(usernameKey("ada_l"));
  });

  it("treats composed and decomposed accents as the same name", () => {
    const decomposed = "Rene\u0301"; // e + combining acute
    const composed = "Ren\u00e9"; // é
    expect(decomposed).not.toBe(composed);
    expect(usernameKey(decomposed)).toBe(usernameKey(composed));
    expect(usernameKey(decomposed)).toBe("ren\u00e9");
    expect(usernameKey("E\u0301MILE")).toBe("\u00e9mile");
  });

  it("is idempotent", () => {
    for (const name of [" Zoë ", "Ren\u0065\u0301", "ÅSA"]) expect(usernameKey(usernameKey(name))).toBe(usernameKey(name));
  });
});

describe("normalizeEmail", () => {
  it("trims and lower-cases", () => {
    expect(normalizeEmail("  Ada.Lovelace@Example.COM \n")).toBe("ada.lovelace@example.com");
  });

  it("treats composed and decomposed accents as the same address", () => {
    expect(normalizeEmail("jose\u0301@example.org")).toBe(normalizeEmail("jos\u00e9@example.org"));
    expect(normalizeEmail("JOSE\u0301@Example.org")).toBe("jos\u00e9@example.org");
  });

  it("keeps distinct addresses distinct", () => {
    expect(normalizeEmail("ada+shoal@example.com")).not.toBe(normalizeEmail("ada@example.com"));
  });
});

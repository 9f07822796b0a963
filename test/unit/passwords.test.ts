import { ARGON2_OPTIONS, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, hashPassword, passwordProblem, verifyPassword } from "../../lib/auth/passwords";

const TOO_SHORT = "must be at least 10 characters";
const TOO_LONG = "must be at most 256 characters";
const COMMON = "is one of the most common passwords; choose another";
const PERSONAL = "must not be your username or email";

describe("passwordProblem", () => {
  const account = { username: "Sebastian_Q", email: "Seb.Quinn@Example.test" };

  it.each<[string, string, { username?: string; email?: string }, string | undefined]>([
    ["an ordinary passphrase", "correct horse battery staple", account, undefined],
    ["exactly 10 characters", "abcdefghi!", {}, undefined],
    ["9 characters", "abcdefgh!", {}, TOO_SHORT],
    ["empty", "", {}, TOO_SHORT],
    ["9 emoji (18 UTF-16 units, 9 characters)", "😀".repeat(9), {}, TOO_SHORT],
    ["10 emoji", "😀".repeat(10), {}, undefined],
    ["exactly 256 characters", "x".repeat(255) + "!", {}, undefined],
    ["257 characters", "x".repeat(257), {}, TOO_LONG],
    ["256 emoji", "😀".repeat(256), {}, undefined],
    ["257 emoji", "😀".repeat(257), {}, TOO_LONG],
    ["a common password (1234567890)", "1234567890", {}, COMMON],
    ["a common password (qwertyuiop)", "qwertyuiop", {}, COMMON],
    ["a common password (password123)", "password123", {}, COMMON],
    ["a common password in other letter case", "QwertyUIOP", {}, COMMON],
    ["a short common password is reported as short", "password", {}, TOO_SHORT],
    ["the username", "Sebastian_Q", account, PERSONAL],
    ["the username in other letter case", "sebastian_q", account, PERSONAL],
    ["the email", "seb.quinn@example.test", account, PERSONAL],
    ["the email's local part", "SEBASTIAN.QUINN", { username: "someone", email: "sebastian.quinn@example.test" }, PERSONAL],
    ["the username with something added", "Sebastian_Q!", account, undefined],
    ["a username match with no account given", "Sebastian_Q", {}, undefined],
  ])("%s → %p", (_what, password, forAccount, expected) => {
    expect(passwordProblem(password, forAccount)).toBe(expected);
  });

  test("the limits are the documented ones", () => {
    expect([PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH]).toEqual([10, 256]);
  });
});

describe("hashing", () => {
  test("argon2id with the documented cost; verifies the password and nothing else; salts every hash", async () => {
    const password = "correct horse battery staple";
    const [first, second] = await Promise.all([hashPassword(password), hashPassword(password)]);
    expect(first).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(ARGON2_OPTIONS).toEqual({ algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    expect(first).not.toBe(second);
    expect(first).not.toContain(password);

    expect(await verifyPassword(first, password)).toBe(true);
    expect(await verifyPassword(second, password)).toBe(true);
    expect(await verifyPassword(first, "correct horse battery stapl")).toBe(false);
    expect(await verifyPassword(first, "Correct horse battery staple")).toBe(false);
    expect(await verifyPassword(first, "")).toBe(false);
  });

  test("non-ASCII passwords round-trip", async () => {
    const password = "pässwörd 李小龍 😀 </script>";
    const hashed = await hashPassword(password);
    expect(await verifyPassword(hashed, password)).toBe(true);
    expect(await verifyPassword(hashed, password.normalize("NFD"))).toBe(false);
  });

  test("an account without a password (null hash) never verifies, whatever is tried", async () => {
    for (const attempt of ["", "decoy password that matches no account", "anything at all"]) {
      expect(await verifyPassword(null, attempt)).toBe(false);
    }
  });

  test("a malformed stored hash is a failed verification, not an exception", async () => {
    await expect(verifyPassword("not a hash", "whatever")).resolves.toBe(false);
    await expect(verifyPassword("$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB", "whatever")).resolves.toBe(false);
  });
});

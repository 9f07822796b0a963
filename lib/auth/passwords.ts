import os from "node:os";
import { hash, verify } from "@node-rs/argon2";
import pLimit from "p-limit";
import { COMMON_PASSWORDS } from "./common-passwords";

/**
 * argon2id with OWASP's baseline (19 MiB, 2 passes, 1 lane): about 10 ms per hash on one
 * core here. Hashing runs on libuv's thread pool, and at most one hash per core but one
 * runs at once, so that a burst of sign-ins leaves the event loop a core for other requests.
 */
const hashing = pLimit(Math.max(1, os.availableParallelism() - 1));
// algorithm 2 is Argon2id (the package exports it as a const enum, which isolated modules cannot read).
export const ARGON2_OPTIONS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

const common = new Set(COMMON_PASSWORDS);

/** Why a password is refused, in words for its owner; undefined when it is acceptable. */
export function passwordProblem(password: string, account: { username?: string; email?: string } = {}): string | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  const lower = password.toLowerCase();
  if (common.has(lower)) return "is one of the most common passwords; choose another";
  const sameAs = [account.username, account.email, account.email?.split("@")[0]].filter(Boolean).map((value) => value!.toLowerCase());
  if (sameAs.includes(lower)) return "must not be your username or email";
  return undefined;
}

export function hashPassword(password: string): Promise<string> {
  return hashing(() => hash(password, ARGON2_OPTIONS));
}

/** A hash verified against a password nobody has, so that unknown accounts take as long as known ones. */
let decoyHash: Promise<string> | undefined;

export async function verifyPassword(passwordHash: string | null, password: string): Promise<boolean> {
  if (passwordHash === null) {
    decoyHash ??= hashPassword("decoy password that matches no account");
    const decoy = await decoyHash;
    await hashing(() => verify(decoy, password)).catch(() => false);
    return false;
  }
  return hashing(() => verify(passwordHash, password)).catch(() => false);
}

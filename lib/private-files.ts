import fs from "node:fs";

/**
 * The embedded node's data directory holds password hashes, sessions, the signing secret and
 * everyone's uploads: only the account running Shoal may read it. Modes are set with chmod, so
 * they do not depend on the umask the node was started with.
 */
export const PRIVATE_DIRECTORY_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

const GROUP_OR_OTHER = 0o077;

export interface PrivateDirectory {
  /** The mode the directory had when it was found readable by others, before it was restricted. */
  readonly tightenedFrom?: number;
}

/**
 * Makes the directory (and missing parents) owner-only; an existing one that others could read is
 * restricted to its owner too (the caller says so in the log). One that cannot be restricted
 * (another account owns it) is an error: running with it open would expose everything in it.
 */
export function ensurePrivateDirectory(directory: string): PrivateDirectory {
  const created = fs.mkdirSync(directory, { recursive: true, mode: PRIVATE_DIRECTORY_MODE }) !== undefined;
  const mode = fs.statSync(directory).mode & 0o777;
  if (created) {
    if (mode !== PRIVATE_DIRECTORY_MODE) fs.chmodSync(directory, PRIVATE_DIRECTORY_MODE);
    return {};
  }
  if ((mode & GROUP_OR_OTHER) === 0) return {};
  try {
    fs.chmodSync(directory, PRIVATE_DIRECTORY_MODE);
  } catch (error) {
    if ((error as { code?: string }).code !== "EPERM") throw error;
    throw new Error(`${directory} can be read by other accounts (mode ${formatMode(mode)}) and this account may not change that: make it owner-only (chmod 700) or use another directory`);
  }
  return { tightenedFrom: mode };
}

/**
 * Gives the file exactly owner read and write, creating it empty first when asked (SQLite then
 * gives its -wal and -shm files the database file's mode). Returns whether others could read it.
 */
export function ensurePrivateFile(file: string, options: { create: boolean }): boolean {
  let descriptor: number;
  try {
    descriptor = fs.openSync(file, options.create ? "a" : "r", PRIVATE_FILE_MODE);
  } catch (error) {
    if (!options.create && (error as { code?: string }).code === "ENOENT") return false;
    throw error;
  }
  try {
    const mode = fs.fstatSync(descriptor).mode & 0o777;
    if (mode !== PRIVATE_FILE_MODE) fs.fchmodSync(descriptor, PRIVATE_FILE_MODE);
    return (mode & GROUP_OR_OTHER) !== 0;
  } finally {
    fs.closeSync(descriptor);
  }
}

export function formatMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

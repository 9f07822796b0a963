import fs from "node:fs";
import path from "node:path";

/** The server binaries the launchers run, and the Debian package that provides each. */
export const DEBIAN_PACKAGES = {
  mariadbd: "mariadb-server",
  "mariadb-install-db": "mariadb-server",
  "redis-server": "redis-server",
  "nats-server": "nats-server",
  haproxy: "haproxy",
} as const;

export type BinaryName = keyof typeof DEBIAN_PACKAGES;

/** The binaries startServices() runs (HAProxy is only needed by the local cluster, scripts/cluster.ts). */
export const ALL_BINARIES: readonly BinaryName[] = ["mariadbd", "mariadb-install-db", "redis-server", "nats-server"];

/** PATH plus the sbin directories, which are often missing from a non-root user's PATH. */
export function defaultSearchDirs(): string[] {
  const fromPath = (process.env.PATH ?? "").split(path.delimiter).filter((dir) => dir !== "");
  return [...new Set([...fromPath, "/usr/sbin", "/usr/local/sbin", "/sbin"])];
}

function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Absolute path of the binary, or undefined when it is not installed. */
export function findBinary(name: BinaryName, searchDirs: readonly string[] = defaultSearchDirs()): string | undefined {
  return searchDirs.map((dir) => path.join(dir, name)).find(isExecutableFile);
}

/** One line naming what to install; its stack is that same line so that test runners print nothing else. */
function missingBinariesError(missing: readonly BinaryName[]): Error {
  const packages = [...new Set(missing.map((name) => DEBIAN_PACKAGES[name]))];
  const error = new Error(`${missing.join(", ")} not found: apt-get install ${packages.join(" ")}`);
  error.stack = error.message;
  return error;
}

/** Throws when any of the binaries is missing, with one line naming the Debian packages to install. */
export function requireBinaries(
  names: readonly BinaryName[],
  searchDirs: readonly string[] = defaultSearchDirs(),
): void {
  const missing = [...new Set(names)].filter((name) => findBinary(name, searchDirs) === undefined);
  if (missing.length > 0) throw missingBinariesError(missing);
}

/** Absolute path of an installed binary; throws the one-line install hint otherwise. */
export function binaryPath(name: BinaryName): string {
  const found = findBinary(name);
  if (found === undefined) throw missingBinariesError([name]);
  return found;
}

/**
 * Which ffmpeg and ffprobe to run. Each is looked up on its own:
 *
 * 1. the system's, when it is on PATH (Debian's `apt-get install ffmpeg`: maintained, security
 *    fixes, hardware acceleration);
 * 2. otherwise the static build shipped by @ffmpeg-installer/ffmpeg or @ffprobe-installer/ffprobe
 *    (an ffmpeg from 2018 and an ffprobe from 2023: good enough for H.264/AAC/WebP, but without
 *    security fixes since; prefer the system's in production).
 *
 * Only absolute PATH entries are searched (an empty or relative entry would mean "the current
 * directory", where an uploaded file could sit). A bundled binary must have its run bit; npm
 * installs with `--ignore-scripts`, or from a tarball made on Windows, can lose it, so it is added
 * when missing, and when that is impossible the lookup fails with a message that says what to run.
 */
import fs from "node:fs";
import path from "node:path";

export type BinarySource = "system" | "bundled";

export interface FfmpegBinaries {
  readonly ffmpeg: string;
  readonly ffprobe: string;
  readonly source: { readonly ffmpeg: BinarySource; readonly ffprobe: BinarySource };
}

/** No usable ffmpeg or ffprobe: a deployment problem, never the uploaded file's fault. */
export class FfmpegBinaryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FfmpegBinaryError";
  }
}

export interface BinaryLookup {
  /** The PATH to search; default `process.env.PATH`. An empty string searches nothing. */
  readonly pathEnv?: string | undefined;
  /** Where the bundled binaries are; default: ask the two installer packages. */
  readonly bundled?: () => { readonly ffmpeg?: string | undefined; readonly ffprobe?: string | undefined };
  /** How to give a file its run bit; default chmod adding x wherever r is set. Injected by tests. */
  readonly makeExecutable?: (file: string) => void;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first absolute PATH entry holding an executable file called `name`, or undefined. */
export function findOnPath(name: string, pathEnv: string | undefined): string | undefined {
  if (pathEnv === undefined || pathEnv === "") return undefined;
  for (const directory of pathEnv.split(path.delimiter)) {
    if (directory === "" || !path.isAbsolute(directory)) continue;
    const candidate = path.join(directory, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function addRunBit(file: string): void {
  const mode = fs.statSync(file).mode & 0o7777;
  fs.chmodSync(file, mode | ((mode & 0o444) >> 2) | 0o100);
}

/**
 * Makes sure `file` exists and may be run, adding the run bit when it is missing.
 * Throws FfmpegBinaryError with the command that would fix it otherwise.
 */
export function ensureExecutable(file: string, makeExecutable: (file: string) => void = addRunBit): void {
  let stats: fs.Stats;
  try {
    stats = fs.statSync(file);
  } catch (error) {
    throw new FfmpegBinaryError(`${file} does not exist; reinstall the package that provides it or install ffmpeg on PATH.`, { cause: error });
  }
  if (!stats.isFile()) throw new FfmpegBinaryError(`${file} is not a file.`);
  if (isExecutableFile(file)) return;
  try {
    makeExecutable(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new FfmpegBinaryError(
      `${file} is not executable and its run bit could not be set (${code}): run "chmod +x ${file}" or install ffmpeg on PATH.`,
      { cause: error },
    );
  }
  if (!isExecutableFile(file)) {
    throw new FfmpegBinaryError(`${file} is still not executable after chmod: run "chmod +x ${file}" as its owner or install ffmpeg on PATH.`);
  }
}

function installerPath(packageName: string): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const found = require(packageName) as { path?: unknown };
    return typeof found.path === "string" ? found.path : undefined;
  } catch {
    // The installers throw (a string, for @ffmpeg-installer) on platforms they have no build for.
    return undefined;
  }
}

function defaultBundled(): { ffmpeg?: string; ffprobe?: string } {
  return { ffmpeg: installerPath("@ffmpeg-installer/ffmpeg"), ffprobe: installerPath("@ffprobe-installer/ffprobe") };
}

/** Decides where ffmpeg and ffprobe come from (see the top of this file). */
export function resolveFfmpegBinaries(lookup: BinaryLookup = {}): FfmpegBinaries {
  const pathEnv = "pathEnv" in lookup ? lookup.pathEnv : process.env.PATH;
  let bundled: { readonly ffmpeg?: string | undefined; readonly ffprobe?: string | undefined } | undefined;
  const pick = (name: "ffmpeg" | "ffprobe"): { file: string; source: BinarySource } => {
    const system = findOnPath(process.platform === "win32" ? `${name}.exe` : name, pathEnv);
    if (system !== undefined) return { file: system, source: "system" };
    bundled ??= (lookup.bundled ?? defaultBundled)();
    const file = bundled[name];
    if (file === undefined) {
      throw new FfmpegBinaryError(
        `No ${name}: it is not on PATH and the bundled one (@${name}-installer/${name}) is not installed for ${process.platform}-${process.arch}. Install ffmpeg (apt-get install ffmpeg).`,
      );
    }
    ensureExecutable(file, lookup.makeExecutable);
    return { file, source: "bundled" };
  };
  const ffmpeg = pick("ffmpeg");
  const ffprobe = pick("ffprobe");
  return { ffmpeg: ffmpeg.file, ffprobe: ffprobe.file, source: { ffmpeg: ffmpeg.source, ffprobe: ffprobe.source } };
}

let resolved: FfmpegBinaries | undefined;

/** The binaries for this process, decided once from the real PATH. */
export function ffmpegBinaries(): FfmpegBinaries {
  resolved ??= resolveFfmpegBinaries();
  return resolved;
}

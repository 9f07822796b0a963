/** The files of a transcoding job: its input checked, a scratch directory for ffmpeg, and the finished files moved out of it. */
import fs from "node:fs";
import path from "node:path";
import { assertLocalPath, TranscodeError } from "./probe";

export async function assertInputFile(inputPath: string): Promise<void> {
  assertLocalPath(inputPath);
  let stats: fs.Stats;
  try {
    stats = await fs.promises.stat(inputPath);
  } catch (error) {
    throw new TranscodeError("input_missing", "The uploaded file is not available for processing.", (error as NodeJS.ErrnoException).code, { cause: error });
  }
  if (!stats.isFile()) throw new TranscodeError("input_missing", "The uploaded file is not available for processing.", "not a regular file");
}

/** Runs `work` with a fresh scratch directory inside `workDir`, removed whatever happens. */
export async function withScratch<T>(workDir: string, work: (scratch: string) => Promise<T>): Promise<T> {
  await fs.promises.mkdir(workDir, { recursive: true });
  const scratch = await fs.promises.mkdtemp(path.join(workDir, ".transcode-"));
  try {
    return await work(scratch);
  } finally {
    await fs.promises.rm(scratch, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Moves finished files from the scratch directory into `workDir`; all or none. */
export async function publish(scratch: string, workDir: string, names: readonly string[]): Promise<Map<string, { path: string; bytes: number }>> {
  const moved: string[] = [];
  const result = new Map<string, { path: string; bytes: number }>();
  try {
    for (const name of names) {
      const target = path.join(workDir, name);
      const { size } = await fs.promises.stat(path.join(scratch, name));
      await fs.promises.rename(path.join(scratch, name), target);
      moved.push(target);
      result.set(name, { path: target, bytes: size });
    }
    return result;
  } catch (error) {
    await Promise.all(moved.map((file) => fs.promises.rm(file, { force: true })));
    throw error;
  }
}

/** Whether `file` holds a WebP image (ffmpeg leaves an 8-byte RIFF stub when no frame came out). */
export async function isWebpImage(file: string): Promise<boolean> {
  try {
    const handle = await fs.promises.open(file, "r");
    try {
      const head = Buffer.alloc(16);
      const { bytesRead } = await handle.read(head, 0, 16, 0);
      const { size } = await handle.stat();
      return bytesRead === 16 && size > 26 && head.toString("latin1", 0, 4) === "RIFF" && head.toString("latin1", 8, 12) === "WEBP";
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

export async function nonEmptyFile(file: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(file)).size > 0;
  } catch {
    return false;
  }
}

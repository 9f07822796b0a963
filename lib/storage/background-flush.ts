import fs from "node:fs/promises";

/**
 * While a file is being written, writes what it holds so far to disk every `intervalMs`, one flush at a time,
 * without holding the writer up. The flush at the end (before a rename into place) is then short, instead of
 * writing the whole file after it was received. Durability still comes from that last flush; these only
 * spread the disk writes over the time the bytes arrive. Call the answer to stop.
 */
export function flushWhileWriting(file: string, intervalMs: number): () => void {
  let flushing = false;
  const flush = (): void => {
    if (flushing) return;
    flushing = true;
    void flushToDisk(file).finally(() => {
      flushing = false;
    });
  };
  const timer = setInterval(flush, intervalMs);
  return () => clearInterval(timer);
}

/** Writes what the file holds so far to disk; never fails (a file gone or renamed meanwhile has nothing left to spread out). */
export async function flushToDisk(file: string): Promise<void> {
  try {
    const handle = await fs.open(file, "r+");
    try {
      await handle.datasync();
    } finally {
      await handle.close();
    }
  } catch {
    // Nothing to do: durability comes from the flush at the end.
  }
}

import fs from "node:fs/promises";
import type { CheckResult } from "../health";
import type { ObjectStorage } from "./object-storage";

export class LocalStorage implements ObjectStorage {
  readonly kind = "local";

  constructor(private readonly dir: string) {}

  async check(): Promise<CheckResult> {
    try {
      await fs.mkdir(this.dir, { recursive: true });
      await fs.access(this.dir, fs.constants.R_OK | fs.constants.W_OK);
      return { status: "ok", kind: this.kind };
    } catch (error) {
      return { status: "down", kind: this.kind, error: error instanceof Error ? error.message : String(error) };
    }
  }

  async close(): Promise<void> {}
}

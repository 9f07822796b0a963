import type { CheckResult } from "../health";

/** Where media bytes live: a local directory (embedded) or an S3 bucket (cluster). */
export interface ObjectStorage {
  readonly kind: "local" | "s3";
  /** Whether objects can be stored and read right now. */
  check(): Promise<CheckResult>;
  close(): Promise<void>;
}

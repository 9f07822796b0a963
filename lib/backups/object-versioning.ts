import { GetBucketVersioningCommand, S3Client } from "@aws-sdk/client-s3";
import type { Settings } from "../../config/settings";
import type { S3StorageOptions } from "../storage/s3-client";
import { s3ClientConfig } from "../storage/s3-client";

/** What a bucket answered to GetBucketVersioning. */
export type BucketVersioning =
  | { readonly state: "enabled" }
  /** Versioning was on once and is now suspended: new writes keep no previous version. */
  | { readonly state: "suspended" }
  /** Never turned on. */
  | { readonly state: "off" }
  | { readonly state: "unknown"; readonly reason: string };

/** Reads the bucket's versioning status; never throws (a refusal or an unreachable store is "unknown" with the reason). */
export async function readBucketVersioning(options: S3StorageOptions): Promise<BucketVersioning> {
  const client = new S3Client(s3ClientConfig(options));
  try {
    const answer = await client.send(new GetBucketVersioningCommand({ Bucket: options.bucket }));
    return versioningOf(answer.Status);
  } catch (error) {
    const name = (error as { name?: string }).name;
    const message = error instanceof Error ? error.message : String(error);
    return { state: "unknown", reason: name !== undefined && !message.includes(name) ? `${name}: ${message}` : message };
  } finally {
    client.destroy();
  }
}

/** The state from GetBucketVersioning's Status (absent for a bucket that never had versioning). */
export function versioningOf(status: string | undefined): BucketVersioning {
  if (status === "Enabled") return { state: "enabled" };
  if (status === "Suspended") return { state: "suspended" };
  if (status === undefined || status === "") return { state: "off" };
  return { state: "unknown", reason: `unexpected versioning status ${JSON.stringify(status)}` };
}

/** The `backups` health check's warning for the bucket, or undefined when versioning is on. */
export function versioningWarning(bucket: string, versioning: BucketVersioning): string | undefined {
  switch (versioning.state) {
    case "enabled":
      return undefined;
    case "suspended":
      return `versioning of the bucket ${bucket} is suspended: an overwritten or deleted media file cannot be brought back`;
    case "off":
      return `versioning of the bucket ${bucket} is off: an overwritten or deleted media file cannot be brought back`;
    case "unknown":
      return `versioning of the bucket ${bucket} could not be read (${versioning.reason}): media files may not be recoverable`;
  }
}

/** The buckets whose versioning matters: the media bucket, and BACKUP_S3_BUCKET when set; none with local storage. */
export function bucketsToCheck(settings: Pick<Settings, "storage" | "backups">): S3StorageOptions[] {
  const { storage } = settings;
  if (storage.kind !== "s3") return [];
  const buckets: S3StorageOptions[] = [storage];
  const backupBucket = settings.backups.s3Bucket;
  if (backupBucket !== undefined && backupBucket !== storage.bucket) buckets.push({ ...storage, bucket: backupBucket });
  return buckets;
}

/** Checks each bucket and sets (or clears) its warning; answers the warnings set. */
export async function checkBucketVersioning(
  settings: Pick<Settings, "storage" | "backups">,
  setWarning: (name: string, message: string | undefined) => void,
  read: (options: S3StorageOptions) => Promise<BucketVersioning> = readBucketVersioning,
): Promise<string[]> {
  const warnings: string[] = [];
  for (const bucket of bucketsToCheck(settings)) {
    const warning = versioningWarning(bucket.bucket, await read(bucket));
    setWarning(`versioning:${bucket.bucket}`, warning);
    if (warning !== undefined) warnings.push(warning);
  }
  return warnings;
}

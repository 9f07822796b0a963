import { HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import type { CheckResult } from "../health";
import type { ObjectStorage } from "./object-storage";

export interface S3StorageOptions {
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string | undefined;
  readonly secretAccessKey: string | undefined;
  readonly forcePathStyle: boolean;
}

export class S3Storage implements ObjectStorage {
  readonly kind = "s3";
  private readonly client: S3Client;

  constructor(private readonly options: S3StorageOptions) {
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials:
        options.accessKeyId && options.secretAccessKey
          ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
          : undefined,
      maxAttempts: 2,
    });
  }

  async check(): Promise<CheckResult> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
      return { status: "ok", kind: this.kind, bucket: this.options.bucket };
    } catch (error) {
      const reason = error instanceof Error ? error.name + (error.message ? `: ${error.message}` : "") : String(error);
      return { status: "down", kind: this.kind, bucket: this.options.bucket, error: reason };
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

import { randomUUID } from "node:crypto";
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListPartsCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import type { StorageSettings } from "../../config/settings";
import type { CheckResult } from "../health";
import { describeStorageFailure } from "./s3-unreachable";

/** A bucket as the settings give it (S3_*), the payload signing optional. */
export type S3StorageOptions = Omit<Extract<StorageSettings, { kind: "s3" }>, "kind" | "unsignedPayload"> & {
  /**
   * Uploads are signed without hashing their bytes (SigV4 `UNSIGNED-PAYLOAD`), which keeps an 8 MiB SHA-256
   * per part off the event loop. Safe over TLS, which protects the bytes on the way; over http only on a
   * trusted network. Undefined: on for https endpoints (and AWS), off for http ones.
   */
  readonly unsignedPayload?: boolean;
};

/** How long a connection to the store may take to open, and a request in flight may go without a byte either way. */
const S3_CONNECT_TIMEOUT_MS = 3000;
const S3_SILENCE_TIMEOUT_MS = 30_000;

/** Client settings from Shoal's S3 settings; shared with the resumable-upload store. */
export function s3ClientConfig(options: S3StorageOptions): S3ClientConfig {
  return {
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: options.forcePathStyle,
    credentials:
      options.accessKeyId && options.secretAccessKey
        ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
        : undefined,
    // Checksums only where an operation requires one: the SDK's default (a CRC32 on every upload, sent as
    // a chunked trailer) is not understood by every S3-compatible store and costs CPU on every byte.
    requestChecksumCalculation: "WHEN_REQUIRED",
    // The SDK waits forever by default: a store that accepts connections and then says nothing would hold every
    // request (and upload) that needs it. Silence, not length, is bounded, so long transfers are unaffected.
    requestHandler: { connectionTimeout: S3_CONNECT_TIMEOUT_MS, socketTimeout: S3_SILENCE_TIMEOUT_MS },
  };
}

/** The calls that carry an object's bytes, whose payload hash UNSIGNED-PAYLOAD replaces. */
const PAYLOAD_COMMANDS = new Set(["PutObjectCommand", "UploadPartCommand"]);

/** Whether uploads skip the payload hash: as set, else only where TLS protects the bytes. */
export function signsPayloadUnsigned(options: S3StorageOptions): boolean {
  return options.unsignedPayload ?? (options.endpoint === undefined || options.endpoint.startsWith("https:"));
}

/**
 * Sends `x-amz-content-sha256: UNSIGNED-PAYLOAD` with PutObject and UploadPart, which the signer then signs
 * instead of a SHA-256 of the body: the SDK would otherwise hash every buffered part on the event loop.
 */
export function signPayloadsUnsigned(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (PAYLOAD_COMMANDS.has(context.commandName ?? "") && request.headers) request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
      return next(args);
    },
    { step: "build", name: "shoalUnsignedPayload" },
  );
}

/** The multipart calls a resumable upload makes (@tus/s3-store), in the order the check makes them. */
type MultipartCall = "CreateMultipartUpload" | "UploadPart" | "ListParts" | "AbortMultipartUpload";

/** Where the check's multipart uploads are begun (and aborted at once): apart from media and upload keys. */
const MULTIPART_CHECK_PREFIX = "shoal-checks/multipart-";

/**
 * Whether the bucket answers every multipart call resumable uploads make: begins a multipart upload on a key
 * of its own, uploads one small part, lists it, and aborts the upload. Down names the first call that failed;
 * an upload it began is aborted whatever happened.
 */
export async function checkMultipartUploads(client: S3Client, bucket: string): Promise<CheckResult> {
  const target = { Bucket: bucket, Key: `${MULTIPART_CHECK_PREFIX}${randomUUID()}` };
  let call: MultipartCall = "CreateMultipartUpload";
  let uploadId: string | undefined;
  try {
    ({ UploadId: uploadId } = await client.send(new CreateMultipartUploadCommand(target)));
    if (!uploadId) throw new Error("the answer has no UploadId");
    call = "UploadPart";
    await client.send(new UploadPartCommand({ ...target, UploadId: uploadId, PartNumber: 1, Body: Buffer.from("shoal multipart check") }));
    call = "ListParts";
    const { Parts: parts = [] } = await client.send(new ListPartsCommand({ ...target, UploadId: uploadId }));
    if (parts.length !== 1) throw new Error(`it listed ${parts.length} parts after one was uploaded`);
    call = "AbortMultipartUpload";
    await client.send(new AbortMultipartUploadCommand({ ...target, UploadId: uploadId }));
    return { status: "ok", kind: "s3", bucket, multipartUploads: "ok" };
  } catch (error) {
    if (uploadId !== undefined && call !== "AbortMultipartUpload") {
      await client.send(new AbortMultipartUploadCommand({ ...target, UploadId: uploadId })).catch(() => undefined);
    }
    return { status: "down", kind: "s3", bucket, failedCall: call, error: `${call} failed, so resumable uploads cannot work: ${describeStorageFailure(error)}` };
  }
}

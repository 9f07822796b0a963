import { NoSuchKey, S3ServiceException } from "@aws-sdk/client-s3";
import { describeStorageFailure, isStorageSilent, isStorageUnreachable, StorageUnavailableError } from "../../lib/storage/s3-unreachable";

const serverError = (status: number) =>
  new S3ServiceException({ name: "InternalError", $fault: "server", $metadata: { httpStatusCode: status } });

describe("isStorageUnreachable", () => {
  it("takes a call that got no answer, or a 5xx one, for an outage", () => {
    expect(isStorageUnreachable(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9000"), { code: "ECONNREFUSED" }))).toBe(true);
    expect(isStorageUnreachable(Object.assign(new Error("socket hang up"), { name: "TimeoutError" }))).toBe(true);
    // What the SDK's retry step makes of an error it does not recognise: a plain Error, no code, no status.
    expect(isStorageUnreachable(Object.assign(new Error("AWS SDK error wrapper for TimeoutError: socket hang up"), { $metadata: { attempts: 2 } }))).toBe(true);
    expect(isStorageUnreachable(serverError(503))).toBe(true);
    expect(isStorageUnreachable(serverError(500))).toBe(true);
  });

  it("leaves the store's refusals, the caller's aborts and our own errors as they are", () => {
    expect(isStorageUnreachable(new NoSuchKey({ message: "The specified key does not exist.", $metadata: { httpStatusCode: 404 } }))).toBe(false);
    expect(isStorageUnreachable(Object.assign(new Error("Request aborted"), { name: "AbortError", $metadata: {} }))).toBe(false);
    expect(isStorageUnreachable(new Error("the store gave no ETag for media/a/original.png"))).toBe(false);
    expect(isStorageUnreachable("ECONNREFUSED")).toBe(false);
  });
});

describe("isStorageSilent", () => {
  it("is true only when the store gave no answer at all: a 5xx is an answer, and begins no outage", () => {
    expect(isStorageSilent(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9000"), { code: "ECONNREFUSED" }))).toBe(true);
    expect(isStorageSilent(Object.assign(new Error("socket hang up"), { name: "TimeoutError" }))).toBe(true);
    expect(isStorageSilent(Object.assign(new Error("AWS SDK error wrapper for TimeoutError: socket hang up"), { $metadata: { attempts: 2 } }))).toBe(true);
    expect(isStorageSilent(serverError(503))).toBe(false);
    expect(isStorageSilent(serverError(500))).toBe(false);
    expect(isStorageSilent(new NoSuchKey({ message: "The specified key does not exist.", $metadata: { httpStatusCode: 404 } }))).toBe(false);
    expect(isStorageSilent(Object.assign(new Error("Request aborted"), { name: "AbortError", $metadata: {} }))).toBe(false);
    expect(isStorageSilent(new Error("the store gave no ETag for media/a/original.png"))).toBe(false);
  });
});

describe("StorageUnavailableError", () => {
  it("answers 503 unavailable without the SDK's words, which the health details still name", () => {
    const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9000"), { code: "ECONNREFUSED" });
    const error = new StorageUnavailableError(cause);
    expect({ status: error.status, code: error.code }).toEqual({ status: 503, code: "unavailable" });
    expect(error.message).not.toContain("127.0.0.1");
    expect(describeStorageFailure(error)).toBe("Error: connect ECONNREFUSED 127.0.0.1:9000");
  });
});

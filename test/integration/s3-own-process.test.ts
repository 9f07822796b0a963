/**
 * The S3 stand-in served from a child process (scripts/services/s3-process.ts), as the soak benchmark runs
 * it: objects stored and read back through the AWS SDK, and stop() ends the process and deletes its data.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { startS3InOwnProcess } from "../../scripts/services/s3-process";

jest.setTimeout(60_000);

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("the S3 stand-in in a process of its own", () => {
  let baseDir: string;

  beforeEach(async () => {
    baseDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-s3-own-"));
  });

  afterEach(async () => {
    await fs.promises.rm(baseDir, { recursive: true, force: true });
  });

  it("stores and returns objects from another process, and stop() ends it and deletes its directory", async () => {
    const s3 = await startS3InOwnProcess({ bucket: "own", baseDir });
    try {
      expect(s3.pid).toEqual(expect.any(Number));
      expect(s3.pid).not.toBe(process.pid);
      expect(path.dirname(s3.dir)).toBe(baseDir);
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      });
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: "a/b.txt", Body: "hello from the soak" }));
      const read = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: "a/b.txt" }));
      expect(await read.Body?.transformToString()).toBe("hello from the soak");
      client.destroy();
    } finally {
      await s3.stop();
    }
    expect(isRunning(s3.pid ?? 0)).toBe(false);
    expect(fs.existsSync(s3.dir)).toBe(false);
    await s3.stop(); // a second stop is harmless
  });

  it("fails with the child's reason when the server cannot start", async () => {
    await expect(startS3InOwnProcess({ bucket: "own", baseDir: path.join(baseDir, "missing") })).rejects.toThrow(/the S3 stand-in did not start: .*ENOENT/);
  });
});

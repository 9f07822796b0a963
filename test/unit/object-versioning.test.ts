import { checkBucketVersioning, versioningOf, versioningWarning } from "../../lib/backups/object-versioning";
import type { BucketVersioning } from "../../lib/backups/object-versioning";

const s3 = { kind: "s3", endpoint: "http://127.0.0.1:1", region: "us-east-1", bucket: "media", accessKeyId: "a", secretAccessKey: "b", forcePathStyle: true } as const;

describe("bucket versioning", () => {
  it("reads GetBucketVersioning's status: Enabled, Suspended, absent (never on), anything else unknown", () => {
    expect(versioningOf("Enabled")).toEqual({ state: "enabled" });
    expect(versioningOf("Suspended")).toEqual({ state: "suspended" });
    expect(versioningOf(undefined)).toEqual({ state: "off" });
    expect(versioningOf("")).toEqual({ state: "off" });
    expect(versioningOf("Maybe")).toEqual({ state: "unknown", reason: 'unexpected versioning status "Maybe"' });
  });

  it("warns for a bucket without versioning, suspended or unreadable, not for one with it", () => {
    expect(versioningWarning("media", { state: "enabled" })).toBeUndefined();
    expect(versioningWarning("media", { state: "off" })).toMatch(/versioning of the bucket media is off/);
    expect(versioningWarning("media", { state: "suspended" })).toMatch(/is suspended/);
    expect(versioningWarning("media", { state: "unknown", reason: "NotImplemented" })).toMatch(/could not be read \(NotImplemented\)/);
  });

  it("checks the media bucket and BACKUP_S3_BUCKET, sets a warning per bucket and clears it once versioning is on", async () => {
    const answers: Record<string, BucketVersioning> = { media: { state: "off" }, vault: { state: "enabled" } };
    const warnings = new Map<string, string>();
    const set = (name: string, message: string | undefined) => (message === undefined ? warnings.delete(name) : warnings.set(name, message));
    const read = async (options: { bucket: string }) => answers[options.bucket] as BucketVersioning;
    const settings = { storage: s3, backups: { s3Bucket: "vault" } } as never;
    expect(await checkBucketVersioning(settings, set, read)).toEqual([expect.stringContaining("bucket media is off")]);
    expect([...warnings.keys()]).toEqual(["versioning:media"]);
    answers.media = { state: "enabled" };
    expect(await checkBucketVersioning(settings, set, read)).toEqual([]);
    expect(warnings.size).toBe(0);
  });

  it("checks nothing with local storage", async () => {
    const set = jest.fn();
    expect(await checkBucketVersioning({ storage: { kind: "local", dir: "/tmp/x" }, backups: {} } as never, set)).toEqual([]);
    expect(set).not.toHaveBeenCalled();
  });
});

import { BackupOperations } from "../../lib/backups/backup-operations";
import { checkBucketVersioning, readBucketVersioning } from "../../lib/backups/object-versioning";
import { startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";

let services: TestServices;

beforeAll(async () => {
  services = await startServices({ s3: true });
}, 60_000);

afterAll(async () => {
  await services?.stop();
});

/**
 * s3rver's answer to GetBucketVersioning carries no Status, as a bucket that never had versioning does, and it
 * refuses PutBucketVersioning (NotImplemented): against it only the "off" state can be shown, and a missing
 * bucket for "cannot be read". "Enabled" and "Suspended" are decided from the status an S3 store answers
 * (unit test object-versioning.test.ts).
 */
describe("S3 bucket versioning on a real S3-compatible server", () => {
  it("reads the versioning status of the media bucket: off on s3rver", async () => {
    const s3 = services.s3!;
    expect(await readBucketVersioning({ ...s3, forcePathStyle: true })).toEqual({ state: "off" });
  });

  it("a missing bucket is reported, not thrown", async () => {
    const s3 = services.s3!;
    expect(await readBucketVersioning({ ...s3, forcePathStyle: true, bucket: "no-such-bucket" })).toEqual({ state: "unknown", reason: expect.any(String) });
  });

  it("puts the warning under the backups health check: degraded, not down", async () => {
    const s3 = services.s3!;
    const operations = new BackupOperations({
      databases: [],
      key: { kind: "configured", key: Buffer.alloc(32) },
      storage: undefined as never,
      mediaObjects: undefined as never,
      startDump: undefined as never,
      drillScratch: undefined as never,
      retention: { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 },
      maxUnverifiedHours: 48,
      catalogue: { drillStatus: async () => ({ last: null, lastPassedAt: Date.now() }) } as never,
      audit: async () => undefined,
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    const settings = { storage: { kind: "s3" as const, ...s3, forcePathStyle: true }, backups: { s3Bucket: undefined } };
    const warnings = await checkBucketVersioning(settings as never, (name, message) => operations.setWarning(name, message));
    expect(warnings).toEqual([`versioning of the bucket ${s3.bucket} is off: an overwritten or deleted media file cannot be brought back`]);
    const check = await operations.health(Date.now());
    expect(check).toMatchObject({ status: "degraded", problems: [warnings[0]] });
    // A bucket that cannot be read at all (here: BACKUP_S3_BUCKET names none) is reported too, with the reason.
    const both = await checkBucketVersioning({ ...settings, backups: { s3Bucket: "no-such-bucket" } } as never, (name, message) => operations.setWarning(name, message));
    expect(both[1]).toMatch(/versioning of the bucket no-such-bucket could not be read \(.+\)/);
    expect((await operations.health(Date.now())).problems).toHaveLength(2);
  });
});

import { randomBytes } from "node:crypto";
import { readManifest, signManifest } from "../../lib/backups/manifest";
import type { UnsignedManifest } from "../../lib/backups/manifest";
import { checksumAlgorithmOf } from "../../lib/backups/table-checksums";

const key = randomBytes(32);

const unsigned: UnsignedManifest = {
  formatVersion: 1,
  id: "01JF0000000000000000000000",
  database: "media",
  engine: "mariadb",
  takenAt: "2026-12-05T02:00:00.000Z",
  objectKey: "backups/media/01JF0000000000000000000000.gz.enc",
  sha256: "0".repeat(64),
  bytes: 1234,
  gtidPosition: "0-1-42",
  source: "127.0.0.1:3306",
  serverVersion: "10.11.19-MariaDB",
  shoalVersion: "1.0.0",
  migrations: ["0001_media_and_variants"],
  tables: { media: { rows: 3, checksum: "123456789" } },
};

describe("backup manifests and their checksum algorithm", () => {
  it("verifies a manifest that names no algorithm (made before it was recorded) as MD5 of the values in hex", () => {
    const legacy = readManifest(JSON.stringify(signManifest(unsigned, key)), key);
    expect(legacy.checksumAlgorithm).toBeUndefined();
    expect(checksumAlgorithmOf(legacy)).toBe("md5-hex");
  });

  it("signs the algorithm with the rest, so that it cannot be changed to match other checksums", () => {
    const signed = signManifest({ ...unsigned, checksumAlgorithm: "crc32-quoted" }, key);
    expect(checksumAlgorithmOf(readManifest(JSON.stringify(signed), key))).toBe("crc32-quoted");
    expect(() => readManifest(JSON.stringify({ ...signed, checksumAlgorithm: "md5-hex" }), key)).toThrow("signature does not match");
    const { checksumAlgorithm: _dropped, ...withoutAlgorithm } = signed;
    expect(() => readManifest(JSON.stringify(withoutAlgorithm), key)).toThrow("signature does not match");
  });

  it("takes SQLite's SHA-256 for SQLite backups, with or without the name", () => {
    expect(checksumAlgorithmOf({ engine: "sqlite" })).toBe("sha256-json");
    expect(checksumAlgorithmOf({ engine: "sqlite", checksumAlgorithm: "sha256-json" })).toBe("sha256-json");
  });

  it("refuses an algorithm it does not know, or one of the other engine, by name", () => {
    expect(() => checksumAlgorithmOf({ engine: "mariadb", checksumAlgorithm: "crc64" })).toThrow('the manifest\'s checksum algorithm "crc64" is unknown for mariadb');
    expect(() => checksumAlgorithmOf({ engine: "mysql", checksumAlgorithm: "sha256-json" })).toThrow('"sha256-json" is unknown for mysql');
    expect(() => checksumAlgorithmOf({ engine: "sqlite", checksumAlgorithm: "crc32-quoted" })).toThrow('"crc32-quoted" is unknown for sqlite');
  });
});

import { parseSettings, SettingsError } from "../../config/settings";
import { CLUSTER, CWD, expectOneLineNaming, mysqlDatabases, settingsError } from "../support/settings-env";

describe("parseSettings: cluster mode", () => {
  it("uses NATS, Redis, S3 and one MySQL server for all three databases", () => {
    const settings = parseSettings(CLUSTER, CWD);
    expect(settings.mode).toBe("cluster");
    expect(settings.transporter).toEqual({ kind: "nats", url: "nats://nats:4222" });
    expect(settings.cache).toEqual({ kind: "redis", enabled: true, url: "redis://cache:6379", ttlSeconds: 60 });
    expect(settings.storage).toEqual({
      kind: "s3",
      endpoint: undefined,
      region: "us-east-1",
      bucket: "shoal-media",
      accessKeyId: undefined,
      secretAccessKey: undefined,
      forcePathStyle: false,
      unsignedPayload: true,
    });
    const primary = "mysql://shoal:pw@db-primary:3306";
    expect(mysqlDatabases(settings)).toEqual({
      membership: { database: "shoal_membership", primaryUrl: primary, replicaUrls: [], poolSize: 10 },
      media: { database: "shoal_media", primaryUrl: primary, replicaUrls: [], poolSize: 10 },
      site: { database: "shoal_site", primaryUrl: primary, replicaUrls: [], poolSize: 10 },
    });
  });

  it.each(["NATS_URL", "REDIS_URL", "MYSQL_PRIMARY_URL", "S3_BUCKET"])(
    "without %s fails with one line starting with that variable",
    (variable) => {
      const env = { ...CLUSTER, [variable]: undefined };
      expectOneLineNaming(settingsError(env), variable);
      // Blank is the same as missing.
      expectOneLineNaming(settingsError({ ...CLUSTER, [variable]: "  " }), variable);
    },
  );

  it("gives exactly the documented message for a malformed replica URL", () => {
    expect(settingsError({ ...CLUSTER, MYSQL_REPLICA_URLS: "mysql//x" }).message).toBe(
      'MYSQL_REPLICA_URLS: "mysql//x" is not a mysql:// URL',
    );
  });

  it.each([
    ["NATS_URL", "http://nats:4222", '"http://nats:4222" is not a nats:// URL'],
    ["REDIS_URL", "cache:6379", '"cache:6379" is not a redis:// URL'],
    ["MYSQL_PRIMARY_URL", "mysql://", '"mysql://" is not a mysql:// URL'],
    ["MYSQL_MEDIA_PRIMARY_URL", "postgres://db/x", '"postgres://db/x" is not a mysql:// URL'],
    ["S3_ENDPOINT", "minio:9000", '"minio:9000" is not a http(s):// URL'],
  ])("rejects a malformed %s", (variable, value, problem) => {
    const error = settingsError({ ...CLUSTER, [variable]: value });
    expectOneLineNaming(error, variable);
    expect(error.message).toBe(`${variable}: ${problem}`);
  });

  it("reports a malformed entry anywhere in a URL list", () => {
    const error = settingsError({ ...CLUSTER, MYSQL_REPLICA_URLS: "mysql://r1:3306, mysql:/r2:3306" });
    expect(error.message).toBe('MYSQL_REPLICA_URLS: "mysql:/r2:3306" is not a mysql:// URL');
  });

  it.each([
    ["MYSQL_PRIMARY_URL", "postgres://shoal:hunter2@db:5432/shoal"],
    ["MYSQL_PRIMARY_URL", "mysql://shoal:hunter2@db:notaport"],
    ["MYSQL_REPLICA_URLS", "mysql://r1:3306,mysql://shoal:hunter2@"],
    ["REDIS_URL", "http://:hunter2@cache:6379"],
  ])("does not echo the password of a malformed %s (%s)", (variable, value) => {
    const error = settingsError({ ...CLUSTER, [variable]: value });
    expectOneLineNaming(error, variable);
    expect(error.message).not.toContain("hunter2");
  });

  it.each([
    ["scheme without its colon", "MYSQL_PRIMARY_URL", "mysql//shoal:hunter2@db:3306/shoal"],
    ["password with an unescaped /", "MYSQL_PRIMARY_URL", "mysql://shoal:hunter2/x@db:3306"],
  ])("does not echo the password of a malformed URL (%s)", (_case, variable, value) => {
    const error = settingsError({ ...CLUSTER, [variable]: value });
    expectOneLineNaming(error, variable);
    expect(error.message).not.toContain("hunter2");
  });

  it("takes the remaining S3 and cache settings", () => {
    const settings = parseSettings(
      {
        ...CLUSTER,
        S3_ENDPOINT: "http://minio:9000",
        S3_REGION: "eu-west-3",
        S3_FORCE_PATH_STYLE: "yes",
        CACHE_TTL_SECONDS: "120",
      },
      CWD,
    );
    expect(settings.storage).toMatchObject({ endpoint: "http://minio:9000", region: "eu-west-3", forcePathStyle: true });
    expect(settings.cache).toEqual({ kind: "redis", enabled: true, url: "redis://cache:6379", ttlSeconds: 120 });
    expectOneLineNaming(settingsError({ ...CLUSTER, S3_FORCE_PATH_STYLE: "maybe" }), "S3_FORCE_PATH_STYLE");
  });

  it("signs uploads without a payload hash over TLS only, unless S3_UNSIGNED_PAYLOAD says otherwise", () => {
    const unsignedWith = (env: Record<string, string>) => {
      const { storage } = parseSettings({ ...CLUSTER, ...env }, CWD);
      return storage.kind === "s3" && storage.unsignedPayload;
    };
    expect(unsignedWith({ S3_ENDPOINT: "https://s3.example.org" })).toBe(true);
    expect(unsignedWith({ S3_ENDPOINT: "http://minio:9000" })).toBe(false);
    expect(unsignedWith({ S3_ENDPOINT: "http://minio:9000", S3_UNSIGNED_PAYLOAD: "true" })).toBe(true);
    expect(unsignedWith({ S3_ENDPOINT: "https://s3.example.org", S3_UNSIGNED_PAYLOAD: "false" })).toBe(false);
    expectOneLineNaming(settingsError({ ...CLUSTER, S3_UNSIGNED_PAYLOAD: "maybe" }), "S3_UNSIGNED_PAYLOAD");
  });
});

describe("parseSettings: MySQL databases", () => {
  const r1 = "mysql://r1:3306";
  const r2 = "mysql://r2:3306";
  const shared = CLUSTER.MYSQL_PRIMARY_URL;

  it("gives the shared replicas to every database", () => {
    const dbs = mysqlDatabases(parseSettings({ ...CLUSTER, MYSQL_REPLICA_URLS: `${r1}, ${r2}` }, CWD));
    for (const name of ["membership", "media", "site"]) {
      expect(dbs[name]).toMatchObject({ primaryUrl: shared, replicaUrls: [r1, r2] });
    }
  });

  it("MYSQL_MEDIA_PRIMARY_URL and MYSQL_MEDIA_REPLICA_URLS move only the media database", () => {
    const dbs = mysqlDatabases(
      parseSettings(
        {
          ...CLUSTER,
          MYSQL_REPLICA_URLS: r1,
          MYSQL_MEDIA_PRIMARY_URL: "mysql://media-primary:3306",
          MYSQL_MEDIA_REPLICA_URLS: "mysql://media-r1:3306",
        },
        CWD,
      ),
    );
    expect(dbs.media).toMatchObject({ primaryUrl: "mysql://media-primary:3306", replicaUrls: ["mysql://media-r1:3306"] });
    expect(dbs.membership).toMatchObject({ primaryUrl: shared, replicaUrls: [r1] });
    expect(dbs.site).toMatchObject({ primaryUrl: shared, replicaUrls: [r1] });
  });

  it("a per-database primary without its own replicas gets no replicas (not the shared primary's)", () => {
    const dbs = mysqlDatabases(
      parseSettings({ ...CLUSTER, MYSQL_REPLICA_URLS: r1, MYSQL_MEDIA_PRIMARY_URL: "mysql://media-primary:3306" }, CWD),
    );
    expect(dbs.media).toMatchObject({ primaryUrl: "mysql://media-primary:3306", replicaUrls: [] });
    expect(dbs.membership.replicaUrls).toEqual([r1]);
  });

  it("per-database replicas alone keep the shared primary", () => {
    const dbs = mysqlDatabases(parseSettings({ ...CLUSTER, MYSQL_REPLICA_URLS: r1, MYSQL_SITE_REPLICA_URLS: r2 }, CWD));
    expect(dbs.site).toMatchObject({ primaryUrl: shared, replicaUrls: [r2] });
    expect(dbs.media.replicaUrls).toEqual([r1]);
  });

  it("needs no shared primary when every database has its own", () => {
    const env = {
      ...CLUSTER,
      MYSQL_PRIMARY_URL: undefined,
      MYSQL_MEMBERSHIP_PRIMARY_URL: "mysql://m:3306",
      MYSQL_MEDIA_PRIMARY_URL: "mysql://p:3306",
      MYSQL_SITE_PRIMARY_URL: "mysql://s:3306",
    };
    const dbs = mysqlDatabases(parseSettings(env, CWD));
    expect([dbs.membership.primaryUrl, dbs.media.primaryUrl, dbs.site.primaryUrl]).toEqual([
      "mysql://m:3306",
      "mysql://p:3306",
      "mysql://s:3306",
    ]);
    const error = settingsError({ ...env, MYSQL_SITE_PRIMARY_URL: undefined });
    expectOneLineNaming(error, "MYSQL_PRIMARY_URL");
    expect(error.message).toContain("MYSQL_SITE_PRIMARY_URL");
  });

  it("names the databases shoal_<name>, or <prefix><name> with MYSQL_DATABASE_PREFIX, or per-database names", () => {
    const prefixed = mysqlDatabases(parseSettings({ ...CLUSTER, MYSQL_DATABASE_PREFIX: "staging_" }, CWD));
    expect([prefixed.membership.database, prefixed.media.database, prefixed.site.database]).toEqual([
      "staging_membership",
      "staging_media",
      "staging_site",
    ]);
    const named = mysqlDatabases(parseSettings({ ...CLUSTER, MYSQL_MEDIA_DATABASE: "photos" }, CWD));
    expect([named.membership.database, named.media.database, named.site.database]).toEqual([
      "shoal_membership",
      "photos",
      "shoal_site",
    ]);
  });

  it("rejects a database prefix or name that is not a plain identifier", () => {
    expectOneLineNaming(settingsError({ ...CLUSTER, MYSQL_DATABASE_PREFIX: "shoal-" }), "MYSQL_DATABASE_PREFIX");
    expectOneLineNaming(settingsError({ ...CLUSTER, MYSQL_SITE_DATABASE: "site; drop" }), "MYSQL_SITE_DATABASE");
  });

  it("applies MYSQL_POOL_SIZE to every database and rejects a non-positive one", () => {
    const dbs = mysqlDatabases(parseSettings({ ...CLUSTER, MYSQL_POOL_SIZE: "4" }, CWD));
    expect(Object.values(dbs).map((db) => db.poolSize)).toEqual([4, 4, 4]);
    expectOneLineNaming(settingsError({ ...CLUSTER, MYSQL_POOL_SIZE: "0" }), "MYSQL_POOL_SIZE");
  });
});

describe("parseSettings: S3 keys", () => {
  it("accepts both keys or neither", () => {
    const both = parseSettings({ ...CLUSTER, S3_ACCESS_KEY_ID: "AKIA1", S3_SECRET_ACCESS_KEY: "s3cret" }, CWD);
    expect(both.storage).toMatchObject({ accessKeyId: "AKIA1", secretAccessKey: "s3cret" });
    expect(parseSettings(CLUSTER, CWD).storage).toMatchObject({ accessKeyId: undefined, secretAccessKey: undefined });
  });

  it.each([
    ["only the key id", { S3_ACCESS_KEY_ID: "AKIA1" }],
    ["only the secret", { S3_SECRET_ACCESS_KEY: "s3cret" }],
  ])("rejects %s with one line naming both variables", (_case, keys) => {
    const error = settingsError({ ...CLUSTER, ...keys });
    expect(error.message).toMatch(/^S3_(ACCESS_KEY_ID|SECRET_ACCESS_KEY): /);
    expect(error.message).not.toMatch(/[\r\n]/);
    expect(error.message).toContain("S3_ACCESS_KEY_ID");
    expect(error.message).toContain("S3_SECRET_ACCESS_KEY");
    expect(error.message).not.toContain("s3cret");
  });

  it("ignores the S3 keys in embedded mode", () => {
    expect(parseSettings({ S3_ACCESS_KEY_ID: "AKIA1" }, CWD).storage.kind).toBe("local");
  });

  it("a blank S3 key counts as unset in the set-together rule, as blank does everywhere else", () => {
    expect(() => parseSettings({ ...CLUSTER, S3_ACCESS_KEY_ID: "" }, CWD)).not.toThrow();
    expect(() => parseSettings({ ...CLUSTER, S3_ACCESS_KEY_ID: " ", S3_SECRET_ACCESS_KEY: "s3cret" }, CWD)).toThrow(
      SettingsError,
    );
  });
});

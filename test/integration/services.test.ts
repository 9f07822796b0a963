import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { Readable } from "node:stream";
import Redis from "ioredis";
import mysql from "mysql2/promise";
import type { Connection, RowDataPacket } from "mysql2/promise";
import { connect } from "nats";
import { requireBinaries } from "../../scripts/services/binaries";
import { freePort } from "../../scripts/services/ports";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";

const DATABASE = "shoal_launcher_test";

describe("requireBinaries", () => {
  it("names the Debian package of a missing binary in one line", () => {
    expect(() => requireBinaries(["mariadbd", "nats-server"], ["/nonexistent"])).toThrow(
      /^mariadbd, nats-server not found: apt-get install mariadb-server nats-server$/,
    );
  });
});

describe("freePort", () => {
  it("picks ports the kernel never lends to an outgoing connection, never the same twice, so a stopped server can start again on its own", async () => {
    const [low, high] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number) as [number, number];
    const ports = [];
    for (let i = 0; i < 100; i++) ports.push(await freePort());
    expect(ports.filter((port) => port >= low && port <= high)).toEqual([]);
    expect(new Set(ports).size).toBe(ports.length);
  });
});

describe("service launchers", () => {
  let services: TestServices;
  let primary: Connection;
  let replica: Connection;

  const mariadb = () => {
    if (services.mariadb === undefined) throw new Error("mariadb was not started");
    return services.mariadb;
  };

  async function replicaIds(): Promise<number[]> {
    const [rows] = await replica.query<RowDataPacket[]>(`SELECT id FROM ${DATABASE}.items ORDER BY id`);
    return rows.map((row) => Number(row.id));
  }

  async function insertOnPrimary(id: number): Promise<void> {
    await primary.query(`INSERT INTO ${DATABASE}.items (id, label) VALUES (?, ?)`, [id, `item ${id}`]);
  }

  beforeAll(async () => {
    services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
    primary = await mysql.createConnection(mariadb().primaryUrl);
    await primary.query(`CREATE DATABASE ${DATABASE}`);
    await primary.query(`CREATE TABLE ${DATABASE}.items (id INT PRIMARY KEY, label VARCHAR(100) NOT NULL)`);
    await mariadb().waitForReplicaCatchUp(0);
    replica = await mysql.createConnection(mariadb().replicaUrls[0] ?? "");
  });

  afterAll(async () => {
    await primary?.end();
    await replica?.end();
    await services?.stop();
  });

  it("listens on loopback ports other than the system services'", () => {
    const env = envFor(services);
    expect(env.SHOAL_MODE).toBe("cluster");
    for (const name of ["MYSQL_PRIMARY_URL", "MYSQL_REPLICA_URLS", "REDIS_URL", "NATS_URL", "S3_ENDPOINT"]) {
      const url = new URL(env[name] ?? "");
      expect(url.hostname).toBe("127.0.0.1");
      expect(["3306", "6379", "4222", ""]).not.toContain(url.port);
    }
    expect(new URL(env.MYSQL_PRIMARY_URL ?? "").pathname).toBe("");
    expect(env.S3_FORCE_PATH_STYLE).toBe("true");
  });

  it("replicates a row written on the primary", async () => {
    await insertOnPrimary(1);
    await mariadb().waitForReplicaCatchUp(0);
    expect(await replicaIds()).toContain(1);
  });

  it("holds rows back while the replica's SQL thread is stopped", async () => {
    await mariadb().stopReplicaSqlThread(0);
    try {
      await insertOnPrimary(2);
      await expect(mariadb().waitForReplicaCatchUp(0, 300)).rejects.toThrow(/did not reach/);
      expect(await replicaIds()).not.toContain(2);
    } finally {
      await mariadb().startReplicaSqlThread(0);
    }
    await mariadb().waitForReplicaCatchUp(0);
    expect(await replicaIds()).toContain(2);
  });

  it("refuses the application user's writes on a replica", async () => {
    await expect(replica.query(`INSERT INTO ${DATABASE}.items (id, label) VALUES (99, 'no')`)).rejects.toMatchObject({
      code: "ER_OPTION_PREVENTS_STATEMENT",
    });
    await expect(primary.query("CREATE DATABASE not_shoal")).rejects.toMatchObject({ code: "ER_DBACCESS_DENIED_ERROR" });
  });

  it("resumes replication when a stopped replica starts again", async () => {
    const server = mariadb().replicas[0];
    if (server === undefined) throw new Error("no replica");
    await replica.end();
    await server.stop();
    expect(server.isRunning()).toBe(false);
    await insertOnPrimary(3);
    await server.start();
    expect(server.isRunning()).toBe(true);
    await mariadb().waitForReplicaCatchUp(0);
    replica = await mysql.createConnection(mariadb().replicaUrls[0] ?? "");
    expect(await replicaIds()).toEqual([1, 2, 3]);
  });

  it("answers PING on Redis", async () => {
    const client = new Redis(services.redis?.url ?? "", { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      expect(await client.ping()).toBe("PONG");
    } finally {
      client.disconnect();
    }
  });

  it("runs NATS with JetStream enabled", async () => {
    const connection = await connect({ servers: services.nats?.url ?? "" });
    try {
      const manager = await connection.jetstreamManager();
      const account = await manager.getAccountInfo();
      expect(account.limits).toBeDefined();
    } finally {
      await connection.close();
    }
  });

  it("stores and returns S3 objects byte for byte, buffered or streamed", async () => {
    const s3 = services.s3;
    if (s3 === undefined) throw new Error("s3 was not started");
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: s3.forcePathStyle,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const get = async (key: string): Promise<Buffer> => {
      const response = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
      return Buffer.from((await response.Body?.transformToByteArray()) ?? []);
    };
    try {
      const bytes = randomBytes(100_000);
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: "buffered.bin", Body: bytes }));
      expect((await get("buffered.bin")).equals(bytes)).toBe(true);

      // A stream body makes the SDK send aws-chunked framing with a checksum trailer.
      const halves = [bytes.subarray(0, 40_000), bytes.subarray(40_000)];
      await client.send(
        new PutObjectCommand({ Bucket: s3.bucket, Key: "streamed.bin", Body: Readable.from(halves), ContentLength: bytes.length }),
      );
      const streamed = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: "streamed.bin" }));
      expect(streamed.ContentEncoding ?? "").not.toMatch(/aws-chunked/);
      expect(Buffer.from((await streamed.Body?.transformToByteArray()) ?? []).equals(bytes)).toBe(true);
    } finally {
      client.destroy();
    }
  });
});

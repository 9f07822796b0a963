/**
 * Promotion on real MariaDB servers (a primary and two replicas) with the topology in a real Redis:
 * a replica that has not applied its relay log is refused, the most advanced replica is promoted
 * after the primary is killed, the other replica follows it by GTID, a database in use switches to
 * it without a restart, a database opened afterwards uses it, and a second promotion is refused.
 */
import { Redis } from "ioredis";
import { sql } from "kysely";
import type { Generated } from "kysely";
import { parseSettings } from "../../config/settings";
import type { Settings } from "../../config/settings";
import type { Database } from "../../lib/db/database";
import { createDatabase } from "../../lib/db/open-database";
import { describePromotion, promoteDatabase } from "../../lib/db/promote-database";
import { PromotionRefused } from "../../lib/db/promotion";
import { RedisTopologyStore } from "../../lib/db/redis-topology-store";
import { MemoryExpiringStore } from "../../lib/expiring-store";
import { startServices } from "../../scripts/services";
import type { MariaDbServer, TestServices } from "../../scripts/services";
import { eventually } from "../support/nodes";

interface NotesTable {
  notes: { id: Generated<number>; body: string };
}

let services: TestServices;
let redis: Redis;
let settings: Settings;
const opened: Database<NotesTable>[] = [];
const quietLogger = { info: () => undefined, warn: () => undefined };

function mariadb() {
  if (!services.mariadb) throw new Error("no MariaDB");
  return services.mariadb;
}

function openMedia(): Database<NotesTable> {
  const db = createDatabase<NotesTable>("media", settings.databases.media, settings.replication, new MemoryExpiringStore(), quietLogger, new RedisTopologyStore(redis));
  opened.push(db);
  return db;
}

const server = (each: MariaDbServer): string => `127.0.0.1:${each.port}`;

async function position(each: MariaDbServer, variable: "gtid_binlog_pos" | "gtid_slave_pos"): Promise<string> {
  const [row] = await each.query<{ value: string }>(`SELECT @@global.${variable} AS value`);
  return row?.value ?? "";
}

async function receivedPosition(each: MariaDbServer): Promise<string> {
  const [status] = await each.query<{ Gtid_IO_Pos: string }>("SHOW SLAVE STATUS");
  return status?.Gtid_IO_Pos ?? "";
}

async function insertNote(body: string): Promise<void> {
  await mariadb().primary.query("INSERT INTO shoal_media.notes (body) VALUES (?)", [body]);
}

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 2 }, redis: true });
  const set = mariadb();
  settings = parseSettings({
    SHOAL_MODE: "cluster",
    SHOAL_SECRET: "x".repeat(32),
    NATS_URL: "nats://127.0.0.1:1",
    REDIS_URL: services.redis?.url ?? "",
    S3_BUCKET: "unused",
    MYSQL_PRIMARY_URL: set.primaryUrl,
    MYSQL_REPLICA_URLS: set.replicaUrls.join(","),
    MYSQL_ADMIN_USER: set.adminUser,
    MYSQL_ADMIN_PASSWORD: set.adminPassword,
    DB_PROBE_INTERVAL_MS: "200",
    DB_FAILOVER_BLOCK_SECONDS: "600",
  });
  redis = new Redis(services.redis?.url ?? "");
  await set.primary.query("CREATE DATABASE shoal_media");
  await set.primary.query("CREATE TABLE shoal_media.notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(100) NOT NULL)");
  await Promise.all([set.waitForReplicaCatchUp(0), set.waitForReplicaCatchUp(1)]);
}, 120_000);

afterAll(async () => {
  await Promise.all(opened.map((db) => db.close()));
  redis?.disconnect();
  await services?.stop();
});

it("refuses a replica that has received transactions its stopped SQL thread has not applied, and changes nothing", async () => {
  const set = mariadb();
  await set.stopReplicaSqlThread(0);
  await insertNote("received, not applied");
  const primaryPosition = await position(set.primary, "gtid_binlog_pos");
  await eventually(() => receivedPosition(set.replicas[0] as MariaDbServer), (received) => received === primaryPosition);

  const promotion = promoteDatabase(settings, redis, { database: "media", replica: set.replicaUrls[0], force: false });
  await expect(promotion).rejects.toThrow(PromotionRefused);
  await expect(promoteDatabase(settings, redis, { database: "media", replica: server(set.replicas[0] as MariaDbServer), force: false })).rejects.toThrow(
    /applied only .*its SQL thread is stopped.*--force/,
  );
  const [readOnly] = await (set.replicas[0] as MariaDbServer).query<{ value: number }>("SELECT @@global.read_only AS value");
  expect(readOnly?.value).toBe(1);
  expect(await new RedisTopologyStore(redis).load("media")).toBeUndefined();
  await set.startReplicaSqlThread(0);
  await set.waitForReplicaCatchUp(0);
}, 60_000);

it("promotes the most advanced replica after the primary is killed; the other follows it, and databases in use and opened later use it", async () => {
  const set = mariadb();
  const [behind, ahead] = set.replicas as [MariaDbServer, MariaDbServer];
  const inUse = openMedia();
  await inUse.connect();
  // The first replica stops receiving, so the second has transactions it lacks.
  await behind.query("STOP SLAVE IO_THREAD");
  await insertNote("only the second replica has this");
  await set.waitForReplicaCatchUp(1);
  await set.primary.kill();

  const outcome = await promoteDatabase(settings, redis, { database: "media", force: false });
  expect(outcome).toMatchObject({
    primary: server(ahead),
    previousPrimary: server(set.primary),
    replicas: [server(behind)],
    unreachable: [],
    forced: false,
    databases: ["membership", "media", "site"],
  });
  expect(describePromotion(outcome)[0]).toBe(`Promoted ${server(ahead)} to primary of membership, media, site (was ${server(set.primary)}).`);
  for (const database of ["membership", "media", "site"]) {
    expect(await new RedisTopologyStore(redis).load(database)).toMatchObject({ primary: server(ahead), replicas: [server(behind)], previousPrimary: server(set.primary) });
  }

  // The database in use follows when told (the nodes' broadcast), without being reopened.
  await inUse.refreshTopology();
  expect(inUse.health().primary).toMatchObject({ server: server(ahead), reachable: true });
  await inUse.write((trx) => trx.insertInto("notes").values({ body: "written to the new primary" }).execute());
  // The first replica now replicates from the new primary, from where it stopped.
  await eventually(async () => {
    const rows = await behind.query<{ body: string }>("SELECT body FROM shoal_media.notes ORDER BY id");
    return rows.map((row) => row.body);
  }, (bodies) => bodies.includes("written to the new primary"));
  const [status] = await behind.query<{ Master_Port: number; Slave_IO_Running: string; Slave_SQL_Running: string }>("SHOW SLAVE STATUS");
  expect(status).toMatchObject({ Master_Port: ahead.port, Slave_IO_Running: "Yes", Slave_SQL_Running: "Yes" });
  expect((await behind.query<{ body: string }>("SELECT body FROM shoal_media.notes ORDER BY id")).map((row) => row.body)).toEqual([
    "received, not applied",
    "only the second replica has this",
    "written to the new primary",
  ]);

  // A node started now, with MYSQL_PRIMARY_URL still naming the dead server, uses the promoted one.
  const restarted = openMedia();
  await restarted.connect();
  expect(restarted.health().primary.server).toBe(server(ahead));
  const count = await restarted.readLatest((db) => db.selectFrom("notes").select(sql<number>`count(*)`.as("count")).executeTakeFirstOrThrow());
  expect(Number(count.count)).toBe(3);
}, 90_000);

it("refuses a second promotion within DB_FAILOVER_BLOCK_SECONDS", async () => {
  await expect(promoteDatabase(settings, redis, { database: "media", force: true })).rejects.toThrow(/less than DB_FAILOVER_BLOCK_SECONDS \(600 s\) ago/);
  expect((await new RedisTopologyStore(redis).load("media"))?.primary).toBe(server(mariadb().replicas[1] as MariaDbServer));
});

it("names a database it does not know", async () => {
  await expect(promoteDatabase(settings, redis, { database: "photos", force: false })).rejects.toThrow(/unknown database "photos" \(known: membership, media, site\)/);
});

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import { DATABASE_NAMES } from "../../config/settings";
import type { ReplicationSettings } from "../../config/settings";
import type { Database } from "../../lib/db/database";
import { createDatabase } from "../../lib/db/open-database";
import { MemoryExpiringStore } from "../../lib/expiring-store";
import { runWithConsistencyKey } from "../../lib/db/read-your-writes";
import type { MembershipDatabase } from "../../lib/db/schemas/membership";
import { ConflictError, UnavailableError } from "../../lib/errors";
import { UserRepository } from "../../lib/users/user-repository";
import { MIGRATIONS } from "../../migrations";
import { startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { eventually } from "../support/nodes";

const quiet = { info: () => undefined, warn: (m: string) => process.env.DEBUG_DB && console.warn(m) };
const GiB = 1024 ** 3;

const replication = (overrides: Partial<ReplicationSettings> = {}): ReplicationSettings => ({
  maxLagSeconds: 30,
  rejoinLagSeconds: 15,
  probeIntervalMs: 200,
  readYourWritesWaitMs: 200,
  readYourWritesWindowMs: 30_000,
  ...overrides,
});

let services: TestServices;
let databaseCounter = 0;
const opened: Database<MembershipDatabase>[] = [];

async function openMariaDb(
  overrides: Partial<ReplicationSettings> = {},
  database = `shoal_t${++databaseCounter}`,
): Promise<Database<MembershipDatabase>> {
  const mariadb = services.mariadb!;
  const db = createDatabase<MembershipDatabase>(
    "membership",
    { kind: "mysql", database, primaryUrl: mariadb.primaryUrl, replicaUrls: mariadb.replicaUrls, poolSize: 4 },
    replication(overrides),
    new MemoryExpiringStore(),
    quiet,
  );
  opened.push(db);
  await db.connect();
  await db.migrate(MIGRATIONS.membership);
  // A database created a moment ago reaches the replica a moment later; until then the replica is out of rotation.
  await eventually(async () => db.health().replicas.every((replica) => replica.inRotation), (ready) => ready);
  return db;
}

async function openSqlite(): Promise<Database<MembershipDatabase>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-sqlite-"));
  const db = createDatabase<MembershipDatabase>(
    "membership",
    { kind: "sqlite", file: path.join(dir, "membership.sqlite") },
    replication(),
    new MemoryExpiringStore(),
    quiet,
  );
  opened.push(db);
  await db.connect();
  await db.migrate(MIGRATIONS.membership);
  return db;
}

let userCounter = 0;
const newUser = () => {
  userCounter++;
  return { username: `user${userCounter}`, email: `user${userCounter}@example.test`, role: "user" as const, quotaBytes: 5 * GiB };
};

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 } });
}, 120_000);

afterAll(async () => {
  await Promise.all(opened.map((db) => db.close().catch(() => undefined)));
  await services?.stop();
});

describe.each([
  ["SQLite", openSqlite],
  ["MariaDB with a replica", () => openMariaDb()],
])("user repository on %s", (_engine, open) => {
  test("creates, finds and updates an account", async () => {
    const users = new UserRepository(await open());
    const created = await runWithConsistencyKey("writer", () => users.create(newUser()));
    const found = await runWithConsistencyKey("writer", () => users.findById(created.id));
    expect(found).toEqual(created);
    expect(await runWithConsistencyKey("writer", () => users.setRole(created.id, "admin"))).toBe(true);
    expect((await runWithConsistencyKey("writer", () => users.findById(created.id)))?.role).toBe("admin");
    expect(await users.setRole("01ARZ3NDEKTSV4RRFFQ69G5FAV", "admin")).toBe(false);
  });

  test("usernames and emails are unique regardless of case, and a refused insert writes nothing", async () => {
    const db = await open();
    const users = new UserRepository(db);
    const first = newUser();
    await users.create(first);
    await expect(users.create({ ...newUser(), username: first.username.toUpperCase() })).rejects.toBeInstanceOf(ConflictError);
    await expect(users.create({ ...newUser(), email: ` ${first.email.toUpperCase()} ` })).rejects.toBeInstanceOf(ConflictError);
    const count = await db.write((trx) => trx.selectFrom("users").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow());
    expect(Number(count.n)).toBe(1);
  });

  test("hostile strings are stored and returned literally", async () => {
    const users = new UserRepository(await open());
    const created = await runWithConsistencyKey("w", () => users.create({ ...newUser(), username: "x' OR 1=1 --" }));
    expect((await runWithConsistencyKey("w", () => users.findById(created.id)))?.username).toBe("x' OR 1=1 --");
  });

  test("running the migrations again changes nothing", async () => {
    const db = await open();
    await expect(db.migrate(MIGRATIONS.membership)).resolves.toBeUndefined();
  });
});

describe.each([
  ["SQLite", "sqlite"],
  ["MariaDB", "mysql"],
] as const)("migrations on %s", (_engine, kind) => {
  test.each(DATABASE_NAMES)("%s: a run stopped after its steps but before recording them completes on the next start", async (name) => {
    const database = `shoal_m${++databaseCounter}`;
    const settings =
      kind === "sqlite"
        ? { kind, file: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "shoal-sqlite-")), `${name}.sqlite`) }
        : { kind, database, primaryUrl: services.mariadb!.primaryUrl, replicaUrls: [], poolSize: 2 };
    const db = createDatabase<Record<string, never>>(name, settings, replication(), new MemoryExpiringStore(), quiet);
    opened.push(db as unknown as Database<MembershipDatabase>);
    await db.connect();
    await db.migrate(MIGRATIONS[name]);
    const schemaOf = () => db.write(async (trx) => (await trx.introspection.getTables()).map((table) => [table.name, table.columns.map((column) => column.name)]));
    const migrated = await schemaOf();
    // What a node killed between a migration's last DDL statement and its record leaves behind (DDL commits at once).
    await db.write((trx) => sql`delete from kysely_migration`.execute(trx));

    await db.migrate(MIGRATIONS[name]);
    expect(await schemaOf()).toEqual(migrated);
    const recorded = await db.write((trx) => sql<{ n: number }>`select count(*) as n from kysely_migration`.execute(trx));
    expect(Number(recorded.rows[0]?.n)).toBe(Object.keys(MIGRATIONS[name]).length);
  });
});

describe("MariaDB read/write routing", () => {
  test("two nodes migrating the same database at once both succeed, and each migration is applied once", async () => {
    const database = `shoal_race${Date.now() % 100000}`;
    await Promise.all([openMariaDb({}, database), openMariaDb({}, database)]);
    const rows = await services.mariadb!.primary.query<{ n: number }>(`select count(*) as n from ${database}.kysely_migration`);
    expect(Number(rows[0]?.n)).toBe(Object.keys(MIGRATIONS.membership).length);
  });

  test("a write on the primary becomes visible on the replica, and plain reads are served by the replica", async () => {
    const db = await openMariaDb();
    const users = new UserRepository(db);
    const created = await users.create(newUser());
    const database = db.health().database;
    await eventually(
      () => services.mariadb!.replicas[0]!.query<{ id: string }>(`select id from ${database}.users where id = ?`, [created.id]),
      (rows) => rows.length === 1,
    );
    const before = db.routingStats().replicaReads;
    expect(await users.findById(created.id)).toBeDefined();
    expect(db.routingStats().replicaReads).toBe(before + 1);
  });

  test("a user reads their own write while the replica's SQL thread is stopped; others still read the replica", async () => {
    const db = await openMariaDb();
    const users = new UserRepository(db);
    await services.mariadb!.stopReplicaSqlThread(0);
    try {
      const created = await runWithConsistencyKey("alice", () => users.create(newUser()));
      expect(await runWithConsistencyKey("alice", () => users.findById(created.id))).toEqual(created);
      expect(db.routingStats().readYourWritesFallbacks).toBeGreaterThanOrEqual(1);
      // Someone else reads the (stale) replica: proof that alice's read was routed for her, not for everyone.
      expect(await runWithConsistencyKey("bob", () => users.findById(created.id))).toBeUndefined();
    } finally {
      await services.mariadb!.startReplicaSqlThread(0);
    }
  });

  test("a replica lagging past the threshold leaves the rotation, reads still answer, and it rejoins once caught up", async () => {
    const db = await openMariaDb({ maxLagSeconds: 1, rejoinLagSeconds: 0.5 });
    const users = new UserRepository(db);
    await eventually(async () => db.health().replicas[0]?.inRotation, (inRotation) => inRotation === true);
    await services.mariadb!.stopReplicaSqlThread(0);
    let latest = await users.create(newUser());
    try {
      const lagging = await eventually(
        async () => {
          latest = await users.create(newUser());
          return db.health().replicas[0]!;
        },
        (replica) => !replica.inRotation,
      );
      expect(lagging.reachable).toBe(true);
      expect(lagging.lagSeconds).toBeGreaterThan(1);
      expect(db.health().status).toBe("degraded");
      // With the replica out, everyone's reads go to the primary and see the latest row.
      expect(await runWithConsistencyKey("someone-else", () => users.findById(latest.id))).toBeDefined();
    } finally {
      await services.mariadb!.startReplicaSqlThread(0);
    }
    const back = await eventually(async () => db.health().replicas[0]!, (replica) => replica.inRotation);
    expect(back.lagSeconds).toBeLessThanOrEqual(0.5);
  });

  test("a stopped replica leaves the rotation while reads still succeed, and rejoins when restarted", async () => {
    const db = await openMariaDb();
    const users = new UserRepository(db);
    const created = await users.create(newUser());
    await services.mariadb!.waitForReplicaCatchUp(0);
    await services.mariadb!.replicas[0]!.stop();
    try {
      expect(await users.findById(created.id)).toBeDefined();
      const replica = await eventually(async () => db.health().replicas[0]!, (r) => !r.reachable && !r.inRotation);
      expect(replica.lagSeconds).toBeNull();
      expect(await users.findById(created.id)).toBeDefined();
    } finally {
      await services.mariadb!.replicas[0]!.start();
    }
    await eventually(async () => db.health().replicas[0]!, (r) => r.reachable && r.inRotation, 30_000);
    const before = db.routingStats().replicaReads;
    expect(await users.findById(created.id)).toBeDefined();
    expect(db.routingStats().replicaReads).toBe(before + 1);
  });

  test("with the primary stopped, writes fail at once with 503 and reads keep working from the replica", async () => {
    const db = await openMariaDb();
    const users = new UserRepository(db);
    const created = await users.create(newUser());
    await services.mariadb!.waitForReplicaCatchUp(0);
    await services.mariadb!.primary.stop();
    try {
      const failure = await users.create(newUser()).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(UnavailableError);
      expect((failure as UnavailableError).status).toBe(503);
      expect((failure as UnavailableError).message).toMatch(/membership database cannot accept changes/);
      // Known to be down now: the next write is refused without trying to connect.
      await expect(users.setRole(created.id, "admin")).rejects.toBeInstanceOf(UnavailableError);
      expect(await users.findById(created.id)).toEqual(created);
      const health = db.health();
      expect(health.primary.reachable).toBe(false);
      expect(health.status).toBe("degraded");
    } finally {
      await services.mariadb!.primary.start();
    }
    await eventually(async () => db.health().primary.reachable, (reachable) => reachable);
    await expect(users.create(newUser())).resolves.toBeDefined();
    const count = await db.write((trx) => sql<{ n: number }>`select count(*) as n from users`.execute(trx));
    expect(Number(count.rows[0]?.n)).toBe(2);
  });
});

/**
 * Losing the MariaDB primary under a write load: two cluster nodes take sign-ups through the API, the
 * primary is SIGKILLed, a replica is promoted (the same code as `npm run db:promote`, broadcasting from a
 * node), and the sign-ups go on through both nodes without a restart. With semi-synchronous replication
 * every acknowledged sign-up is on the new primary; without it, how many were lost is printed.
 */
import { promoteAndAnnounce } from "../../scripts/db-promote";
import { envFor, startServices } from "../../scripts/services";
import type { MariaDbReplicationSet, MariaDbServer, TestServices } from "../../scripts/services";
import { HttpClient } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

const WRITERS = 4;
const ACKNOWLEDGED_BEFORE_KILL = 30;
const ACKNOWLEDGED_AFTER_PROMOTION = 30;

interface SignUp {
  readonly username: string;
  readonly node: string;
  /** The answer arrived before the primary was killed. */
  readonly beforeKill: boolean;
  readonly afterPromotion: boolean;
}

interface LoadReport {
  readonly acknowledged: readonly SignUp[];
  readonly refused: number;
  readonly lost: readonly SignUp[];
  readonly primary: string;
  /** Commits the old primary made semi-synchronously (acknowledged by a replica) and without, from the start of the test to the kill. */
  readonly semiSyncCommits: { readonly yes: number; readonly no: number };
}

function replicationSet(services: TestServices): MariaDbReplicationSet {
  if (!services.mariadb) throw new Error("no MariaDB");
  return services.mariadb;
}

async function semiSyncStatus(primary: MariaDbServer): Promise<Record<string, string>> {
  const rows = await primary.query<{ Variable_name: string; Value: string }>("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'");
  return Object.fromEntries(rows.map((row) => [row.Variable_name, row.Value]));
}

async function semiSyncClients(primary: MariaDbServer): Promise<number> {
  const status = await semiSyncStatus(primary);
  return status.Rpl_semi_sync_master_status === "ON" ? Number(status.Rpl_semi_sync_master_clients) : 0;
}

function primaryOf(node: RunningNode): Promise<string> {
  return node.broker
    .call<{ health: { primary: { server: string; reachable: boolean } } }, object>("users.replicationStatus", {}, { nodeID: node.broker.nodeID })
    .then(({ health }) => (health.primary.reachable ? health.primary.server : `${health.primary.server} (unreachable)`));
}

/** Runs the whole scenario on fresh servers and nodes; returns what was acknowledged and what the new primary lacks. */
async function killPrimaryUnderLoad(semiSync: boolean): Promise<LoadReport> {
  const services = await startServices({ mariadb: { replicas: 2, semiSync }, redis: true, nats: true, s3: true });
  try {
    const set = replicationSet(services);
    if (semiSync) await eventually(() => semiSyncClients(set.primary), (clients) => clients === 2, 30_000);
    // The setup's statements ran before any replica connected, asynchronously; count from here.
    const baseline = await semiSyncStatus(set.primary);
    const env = {
      ...envFor(services),
      MYSQL_ADMIN_USER: set.adminUser,
      MYSQL_ADMIN_PASSWORD: set.adminPassword,
      DB_SEMI_SYNC: String(semiSync),
      DB_PROBE_INTERVAL_MS: "250",
      // The 503s of the failover would otherwise fill the output.
      LOG_LEVEL: "fatal",
      DB_FAILOVER_BLOCK_SECONDS: "600",
      RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100000",
      RATE_API_REQUESTS_PER_IP_PER_MINUTE: "100000",
    };
    const nodes = await Promise.all([
      startNode({ ...env, NODE_ID: "failover-a", SERVICES: "api,users,site" }),
      startNode({ ...env, NODE_ID: "failover-b", SERVICES: "api,users,media" }),
    ]);
    await Promise.all(nodes.map((node) => node.broker.waitForServices(["users", "site", "media"], 30_000)));

    const acknowledged: SignUp[] = [];
    let refused = 0;
    let killed = false;
    let promoted = false;
    let stopping = false;
    const writer = async (index: number): Promise<void> => {
      for (let round = 0; !stopping; round++) {
        const node = nodes[(index + round) % nodes.length] as RunningNode;
        const username = `${semiSync ? "semi" : "async"}_${index}_${round}`;
        try {
          const answer = await new HttpClient(node.baseUrl, { origin: null }).post("/api/auth/register", {
            username,
            email: `${username}@example.test`,
            password: `long enough secret ${username}`,
          });
          if (answer.status === 201) acknowledged.push({ username, node: node.broker.nodeID, beforeKill: !killed, afterPromotion: promoted });
          else refused++;
        } catch {
          refused++;
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, index) => writer(index));

    await eventually(async () => acknowledged.length, (count) => count >= ACKNOWLEDGED_BEFORE_KILL, 60_000);
    const status = await semiSyncStatus(set.primary);
    killed = true;
    await set.primary.kill();
    const commits = (name: string): number => Number(status[name] ?? 0) - Number(baseline[name] ?? 0);
    const semiSyncCommits = { yes: commits("Rpl_semi_sync_master_yes_tx"), no: commits("Rpl_semi_sync_master_no_tx") };
    await eventually(async () => refused, (count) => count > 0, 10_000);
    const operator = nodes[0] as RunningNode;
    const outcome = await promoteAndAnnounce(operator.settings, operator.broker, { database: "membership", force: false });
    promoted = true;
    // Every node follows the broadcast without a restart, and sign-ups succeed again through both.
    for (const node of nodes) await eventually(() => primaryOf(node), (server) => server === outcome.primary, 15_000);
    await eventually(
      async () => acknowledged.filter((signUp) => signUp.afterPromotion),
      (after) => after.length >= ACKNOWLEDGED_AFTER_PROMOTION && nodes.every((node) => after.some((signUp) => signUp.node === node.broker.nodeID)),
      60_000,
    );
    stopping = true;
    await Promise.all(writers);
    await stopAllNodes();

    const newPrimary = set.replicas.find((replica) => `127.0.0.1:${replica.port}` === outcome.primary) as MariaDbServer;
    const rows = await newPrimary.query<{ username: string }>("SELECT username FROM shoal_membership.users");
    const present = new Set(rows.map((row) => row.username));
    return { acknowledged, refused, lost: acknowledged.filter((signUp) => !present.has(signUp.username)), primary: outcome.primary, semiSyncCommits };
  } finally {
    await stopAllNodes();
    await services.stop();
  }
}

function summary(mode: string, report: LoadReport): string {
  const before = report.acknowledged.filter((signUp) => signUp.beforeKill).length;
  const lostBefore = report.lost.filter((signUp) => signUp.beforeKill).length;
  return (
    `${mode}: ${report.acknowledged.length} sign-ups acknowledged (${before} before the kill), ${report.refused} refused during the failover; ` +
    `lost after promoting ${report.primary}: ${report.lost.length} (${lostBefore} acknowledged before the kill)`
  );
}

it("with semi-synchronous replication, every sign-up acknowledged before the kill (and after) is on the promoted primary", async () => {
  const report = await killPrimaryUnderLoad(true);
  console.log(summary("semi-sync", report));
  expect(report.acknowledged.filter((signUp) => signUp.beforeKill).length).toBeGreaterThanOrEqual(ACKNOWLEDGED_BEFORE_KILL);
  // The old primary really waited for a replica: no commit fell back to asynchronous.
  expect(report.semiSyncCommits.yes).toBeGreaterThanOrEqual(ACKNOWLEDGED_BEFORE_KILL);
  expect(report.semiSyncCommits.no).toBe(0);
  expect(report.lost).toEqual([]);
}, 240_000);

it("with asynchronous replication, writes go on after the promotion and the loss is counted", async () => {
  const report = await killPrimaryUnderLoad(false);
  console.log(summary("asynchronous", report));
  expect(report.acknowledged.filter((signUp) => signUp.afterPromotion).length).toBeGreaterThanOrEqual(ACKNOWLEDGED_AFTER_PROMOTION);
  // Every sign-up acknowledged after the promotion was written to the new primary itself.
  expect(report.lost.filter((signUp) => signUp.afterPromotion)).toEqual([]);
}, 240_000);

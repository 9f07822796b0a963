import Redis from "ioredis";
import type { RateLimitSettings } from "../../config/settings";
import { RateLimitedError } from "../../lib/errors";
import { RateLimits } from "../../lib/security/rate-limits";
import { startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";

const LIMIT = 100;
const SYNC_BATCH = 10;

const limits: RateLimitSettings = {
  loginFailuresPerAccountPerHour: 10,
  loginFailuresPerIpPerHour: 100,
  registrationsPerIpPerHour: 10,
  apiRequestsPerIpPerMinute: LIMIT,
  apiRequestsSyncBatch: SYNC_BATCH,
  uploadsPerUserPerHour: 200,
};

/** Two api nodes: each its own RateLimits and its own Redis connection, as two processes would have. */
describe("the per-address API limit across two nodes (Redis)", () => {
  let services: TestServices;
  const clients: Redis[] = [];
  const nodes: RateLimits[] = [];

  beforeAll(async () => {
    services = await startServices({ redis: true });
    for (let i = 0; i < 2; i += 1) {
      const client = new Redis(services.redis?.url ?? "", { maxRetriesPerRequest: 1 });
      clients.push(client);
      nodes.push(new RateLimits(limits, client));
    }
  });

  afterAll(async () => {
    for (const node of nodes) await node.close();
    for (const client of clients) client.disconnect();
    await services?.stop();
  });

  async function admitted(node: RateLimits, ip: string): Promise<boolean> {
    try {
      await node.consumeApiRequest(ip);
      return true;
    } catch (error) {
      if (error instanceof RateLimitedError) return false;
      throw error;
    }
  }

  it("admits at least the limit and at most the limit plus nodes × batch, whichever node the requests reach", async () => {
    const ip = "198.51.100.7";
    let admittedCount = 0;
    let refusedInARow = 0;
    // Both nodes at once, several requests in flight on each, until both refuse for a while.
    while (refusedInARow < 4 * SYNC_BATCH) {
      const answers = await Promise.all([0, 1, 0, 1, 0, 1].map((node) => admitted(nodes[node]!, ip)));
      for (const answer of answers) {
        if (answer) {
          admittedCount += 1;
          refusedInARow = 0;
        } else {
          refusedInARow += 1;
        }
      }
      expect(admittedCount).toBeLessThanOrEqual(LIMIT + 2 * SYNC_BATCH);
    }
    expect(admittedCount).toBeGreaterThanOrEqual(LIMIT);
    expect(admittedCount).toBeLessThanOrEqual(LIMIT + 2 * SYNC_BATCH);
  });

  it("counts one node's requests against the other's: a node that took none refuses once the other has used the limit", async () => {
    const ip = "198.51.100.8";
    for (let i = 0; i < LIMIT + SYNC_BATCH; i += 1) await admitted(nodes[0]!, ip);
    await nodes[0]!.close();
    // Node 1 learns the shared count with its first batch at the latest.
    const answers: boolean[] = [];
    for (let i = 0; i < SYNC_BATCH + 1; i += 1) answers.push(await admitted(nodes[1]!, ip));
    expect(answers.filter(Boolean).length).toBeLessThanOrEqual(SYNC_BATCH);
    expect(answers.at(-1)).toBe(false);
  });

  it("tells a refused caller how long until the window ends", async () => {
    const ip = "198.51.100.9";
    let refusal: unknown;
    for (let i = 0; i < LIMIT + 2 * SYNC_BATCH + 1 && refusal === undefined; i += 1) {
      await nodes[1]!.consumeApiRequest(ip).catch((error: unknown) => {
        refusal = error;
      });
    }
    expect(refusal).toBeInstanceOf(RateLimitedError);
    const retryAfter = (refusal as RateLimitedError).retryAfterSeconds ?? 0;
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it("keeps the other limits exact: sign-ups are counted in Redis one by one", async () => {
    const ip = "198.51.100.10";
    const answers: boolean[] = [];
    for (let i = 0; i < limits.registrationsPerIpPerHour + 1; i += 1) {
      answers.push(await nodes[i % 2]!.consumeRegistration(ip).then(() => true, () => false));
    }
    expect(answers.filter(Boolean)).toHaveLength(limits.registrationsPerIpPerHour);
    expect(answers.at(-1)).toBe(false);
  });
});

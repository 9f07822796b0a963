import type { RateLimiterAbstract } from "rate-limiter-flexible";
import { BatchedRateLimiter, RateLimitExceeded } from "../../lib/security/batched-rate-limiter";

/** A shared store with a fixed window per key, on the test's clock; `failing` makes it reject like an unreachable Redis. */
class FakeSharedStore {
  readonly duration = 60;
  failing = false;
  sent = 0;
  calls = 0;
  private readonly windows = new Map<string, { consumed: number; endsAt: number }>();

  constructor(private readonly clock: { now: number }) {}

  async penalty(key: string, points: number): Promise<{ consumedPoints: number; msBeforeNext: number }> {
    if (this.failing) throw new Error("connection refused");
    this.sent += points;
    this.calls += 1;
    let window = this.windows.get(key);
    if (window === undefined || window.endsAt <= this.clock.now) {
      window = { consumed: 0, endsAt: this.clock.now + this.duration * 1000 };
      this.windows.set(key, window);
    }
    window.consumed += points;
    return { consumedPoints: window.consumed, msBeforeNext: window.endsAt - this.clock.now };
  }
}

function limiterOn(store: FakeSharedStore, clock: { now: number }, points: number, syncBatch: number): BatchedRateLimiter {
  return new BatchedRateLimiter(store as unknown as RateLimiterAbstract, { points, syncBatch, syncIntervalMs: 60_000, now: () => clock.now });
}

async function admittedOf(limiter: BatchedRateLimiter, key: string, attempts: number): Promise<number> {
  let admitted = 0;
  for (let i = 0; i < attempts; i += 1) {
    admitted += await limiter.consume(key).then(
      () => 1,
      (error: unknown) => {
        if (error instanceof RateLimitExceeded) return 0;
        throw error;
      },
    );
  }
  return admitted;
}

describe("BatchedRateLimiter", () => {
  const limiters: BatchedRateLimiter[] = [];
  afterAll(() => limiters.forEach((limiter) => limiter.close()));

  function setUp(points: number, syncBatch: number) {
    const clock = { now: 1_000_000 };
    const store = new FakeSharedStore(clock);
    const limiter = limiterOn(store, clock, points, syncBatch);
    limiters.push(limiter);
    return { clock, store, limiter };
  }

  it("admits exactly the limit on one node, and sends its count in batches rather than per request", async () => {
    const { store, limiter } = setUp(50, 10);
    expect(await admittedOf(limiter, "a", 80)).toBe(50);
    await limiter.syncAll();
    expect(store.sent).toBe(50);
    // One call per half batch.
    expect(store.calls).toBeLessThanOrEqual(50 / 5 + 1);
  });

  it("refuses with the time left in the store's window, and admits again once it has ended", async () => {
    const { clock, limiter } = setUp(5, 2);
    expect(await admittedOf(limiter, "a", 5)).toBe(5);
    await limiter.syncAll();
    clock.now += 20_000;
    const refusal = await limiter.consume("a").catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(RateLimitExceeded);
    expect((refusal as RateLimitExceeded).msBeforeNext).toBe(40_000);
    clock.now += 40_000;
    expect(await admittedOf(limiter, "a", 5)).toBe(5);
  });

  it("keeps limiting on its own count while the store is unreachable", async () => {
    const { store, limiter } = setUp(20, 4);
    store.failing = true;
    expect(await admittedOf(limiter, "a", 40)).toBe(20);
  });

  it("learns the other nodes' counts from the store: one node's requests use up the other's allowance", async () => {
    const clock = { now: 1_000_000 };
    const store = new FakeSharedStore(clock);
    const first = limiterOn(store, clock, 30, 6);
    const second = limiterOn(store, clock, 30, 6);
    limiters.push(first, second);
    expect(await admittedOf(first, "a", 30)).toBe(30);
    await first.syncAll();
    // The second node admits what it cannot know of yet, at most one batch, then hears from the store.
    expect(await admittedOf(second, "a", 20)).toBeLessThanOrEqual(6);
  });
});

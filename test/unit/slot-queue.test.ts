import { SlotQueue } from "../../lib/jobs/slot-queue";

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("works run in the order their tickets were taken, however late the first one is ready", async () => {
  const queue = new SlotQueue(1);
  const order: string[] = [];
  const first = queue.take();
  const second = queue.take();
  const secondDone = second.run(async () => {
    order.push("second");
    return 2;
  });
  await tick();
  // The first ticket holds the only slot until it hands its work over.
  expect(order).toEqual([]);
  await expect(first.run(async () => order.push("first"))).resolves.toBe(1);
  await expect(secondDone).resolves.toBe(2);
  expect(order).toEqual(["first", "second"]);
});

test("a cancelled ticket gives its place up; a failing work frees its slot and reports its error", async () => {
  const queue = new SlotQueue(1);
  const cancelled = queue.take();
  const failing = queue.take();
  const after = queue.take();
  cancelled.cancel();
  await expect(failing.run(async () => Promise.reject(new Error("broken")))).rejects.toThrow("broken");
  await expect(after.run(async () => "ran")).resolves.toBe("ran");
  // cancel after run is a no-op.
  after.cancel();
});

test("at most `slots` works at once", async () => {
  const queue = new SlotQueue(2);
  let running = 0;
  let most = 0;
  const work = async () => {
    running++;
    most = Math.max(most, running);
    await tick();
    running--;
  };
  await Promise.all(Array.from({ length: 6 }, () => queue.take().run(work)));
  expect(most).toBe(2);
});

test("a work that leaves its slot lets the next one run while it goes on", async () => {
  const queue = new SlotQueue(1);
  let finishFirst: () => void = () => undefined;
  const order: string[] = [];
  const first = queue.take().run(async (leave) => {
    order.push("first computes");
    leave();
    await new Promise<void>((resolve) => {
      finishFirst = resolve;
    });
    order.push("first stored");
    return "first";
  });
  const second = queue.take().run(async () => {
    order.push("second computes");
    return "second";
  });
  await expect(second).resolves.toBe("second");
  expect(order).toEqual(["first computes", "second computes"]);
  finishFirst();
  await expect(first).resolves.toBe("first");
  expect(order).toEqual(["first computes", "second computes", "first stored"]);
});

test("the recent hold time follows the works that held a slot, not the cancelled tickets", async () => {
  const queue = new SlotQueue(1, { initialHoldMs: 0 });
  queue.take().cancel();
  await queue.take().run(async () => undefined);
  const afterCancel = queue.recentHoldMs;
  await queue.take().run(() => new Promise((resolve) => setTimeout(resolve, 50)));
  // A moving average: a fifth of the new hold (at least 50 ms) is added.
  expect(queue.recentHoldMs).toBeGreaterThanOrEqual(0.8 * afterCancel + 0.2 * 50 - 1);
  expect(queue.recentHoldMs).toBeGreaterThan(afterCancel);
});

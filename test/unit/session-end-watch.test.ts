import { watchSessionEnd } from "../../lib/realtime/session-end-watch";

const START = 1_700_000_000_000;

beforeEach(() => {
  jest.useFakeTimers({ now: START });
});

afterEach(() => {
  jest.useRealTimers();
});

/** A watch whose session ends at the times `ends` gives, in turn (undefined: ended); records when it was told the session ended. */
function watch(endsAt: number, ends: Array<number | undefined | Error>) {
  const asked: number[] = [];
  const endedAt: number[] = [];
  const stop = watchSessionEnd(endsAt, {
    endOf: async () => {
      asked.push(Date.now());
      const next = ends.shift();
      if (next instanceof Error) throw next;
      return next;
    },
    ended: () => endedAt.push(Date.now()),
  });
  return { asked, endedAt, stop };
}

test("reads the session again at its end, not before, and reports it ended", async () => {
  const { asked, endedAt } = watch(START + 5000, [undefined]);
  await jest.advanceTimersByTimeAsync(4999);
  expect(asked).toEqual([]);
  await jest.advanceTimersByTimeAsync(1);
  expect(asked).toEqual([START + 5000]);
  expect(endedAt).toEqual([START + 5000]);
});

test("a session extended meanwhile is watched until its new end", async () => {
  const { asked, endedAt } = watch(START + 1000, [START + 4000, undefined]);
  await jest.advanceTimersByTimeAsync(3999);
  expect({ asked, endedAt }).toEqual({ asked: [START + 1000], endedAt: [] });
  await jest.advanceTimersByTimeAsync(1);
  expect({ asked, endedAt }).toEqual({ asked: [START + 1000, START + 4000], endedAt: [START + 4000] });
});

test("an end already past is checked at once", async () => {
  const { endedAt } = watch(START - 10, [undefined]);
  await jest.advanceTimersByTimeAsync(0);
  expect(endedAt).toEqual([START]);
});

test("a session that cannot be read again at its end is treated as ended", async () => {
  const { endedAt } = watch(START + 100, [new Error("users service unavailable")]);
  await jest.advanceTimersByTimeAsync(100);
  expect(endedAt).toEqual([START + 100]);
});

test("an end beyond setTimeout's range is reached in steps, not at once", async () => {
  const farEnd = START + 40 * 24 * 3600 * 1000;
  const { asked, endedAt } = watch(farEnd, [farEnd, undefined]);
  await jest.advanceTimersByTimeAsync(1000);
  expect(asked).toEqual([]);
  await jest.advanceTimersByTimeAsync(farEnd - START);
  expect(asked.at(-1)).toBe(farEnd);
  expect(endedAt).toEqual([farEnd]);
});

test("a stopped watch (the socket went away) neither reads the session nor reports anything", async () => {
  const { asked, endedAt, stop } = watch(START + 100, [undefined]);
  stop();
  await jest.advanceTimersByTimeAsync(1000);
  expect({ asked, endedAt }).toEqual({ asked: [], endedAt: [] });
});

test("a watch stopped while the session is being read reports nothing", async () => {
  let answer: (end: number | undefined) => void = () => undefined;
  const endedAt: number[] = [];
  const stop = watchSessionEnd(START + 100, { endOf: () => new Promise((resolve) => (answer = resolve)), ended: () => endedAt.push(Date.now()) });
  await jest.advanceTimersByTimeAsync(100);
  stop();
  answer(undefined);
  await jest.advanceTimersByTimeAsync(1000);
  expect(endedAt).toEqual([]);
});

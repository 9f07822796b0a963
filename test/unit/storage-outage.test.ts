import { StorageOutage } from "../../lib/storage/storage-outage";

const PROBE_EVERY_MS = 2000;

/** A store whose answers the test decides: `reachable` or not, and how many probes it got. */
function probedStore(): { probe: () => Promise<void>; reachable: boolean; probes: number } {
  const store = {
    reachable: false,
    probes: 0,
    probe: async () => {
      store.probes++;
      if (!store.reachable) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    },
  };
  return store;
}

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

test("an outage lasts until a probe reaches the store, probing every interval meanwhile, and is reported once each way", async () => {
  const store = probedStore();
  const outage = new StorageOutage(store.probe, PROBE_EVERY_MS);
  const events: string[] = [];
  outage.onOpen((cause) => events.push(`began: ${(cause as Error).message}`));
  outage.onRecovered(() => events.push("ended"));

  expect(outage.known).toBe(false);
  outage.begin(new Error("first"));
  outage.begin(new Error("second"));
  expect({ known: outage.known, reason: (outage.reason as Error).message }).toEqual({ known: true, reason: "first" });

  await jest.advanceTimersByTimeAsync(3 * PROBE_EVERY_MS);
  expect({ known: outage.known, probes: store.probes }).toEqual({ known: true, probes: 3 });

  store.reachable = true;
  await jest.advanceTimersByTimeAsync(PROBE_EVERY_MS);
  expect({ known: outage.known, reason: outage.reason, probes: store.probes }).toEqual({ known: false, reason: undefined, probes: 4 });
  await jest.advanceTimersByTimeAsync(5 * PROBE_EVERY_MS);
  expect(store.probes).toBe(4);
  expect(events).toEqual(["began: first", "ended"]);
});

test("once stopped, it neither probes nor begins another outage", async () => {
  const store = probedStore();
  const outage = new StorageOutage(store.probe, PROBE_EVERY_MS);
  outage.begin(new Error("down"));
  outage.stop();
  await jest.advanceTimersByTimeAsync(5 * PROBE_EVERY_MS);
  expect(store.probes).toBe(0);

  const later = new StorageOutage(store.probe, PROBE_EVERY_MS);
  later.stop();
  later.begin(new Error("down"));
  expect(later.known).toBe(false);
});

import { MemoryViewStore } from "../../lib/stats/memory-view-store";
import { autoBucket, bucketStarts, combine, describe as describeMetric, percentile } from "../../lib/stats/metrics";
import { seriesCsv } from "../../lib/stats/stats-csv";
import { deltasOf, viewerKey } from "../../lib/stats/view-store";
import type { ViewBatch } from "../../lib/stats/view-store";

const HOUR = 3600_000;
const DAY = 24 * HOUR;

test("the bucket grows with the range as PeerTube's does", () => {
  expect([HOUR, 3 * HOUR, 4 * HOUR, DAY, 2 * DAY, 4 * DAY, 14 * DAY, 60 * DAY, 180 * DAY, 2 * 365 * DAY, 6 * 365 * DAY].map(autoBucket)).toEqual([
    "1m", "1m", "10m", "1h", "6h", "12h", "1d", "2d", "7d", "1mo", "6mo",
  ]);
  expect(bucketStarts(Date.UTC(2026, 0, 1, 10, 30), Date.UTC(2026, 0, 1, 13), "1h").map((t) => new Date(t).toISOString())).toEqual([
    "2026-01-01T10:00:00.000Z", "2026-01-01T11:00:00.000Z", "2026-01-01T12:00:00.000Z",
  ]);
  expect(describeMetric("users_new", "1d")).toBe("New members per day.");
});

test("periods combine by what they measure; percentiles by nearest rank", () => {
  expect(combine("sum", [1, 2, 3])).toBe(6);
  expect(combine("last", [5, 7])).toBe(7);
  expect(combine("max", [1, 9, 3])).toBe(9);
  expect(combine("mean", [2, 4])).toBe(3);
  expect(combine("sum", [])).toBe(0);
  expect(combine("last", [])).toBeNull();
  expect([percentile([10, 2, 4], 50), percentile([10, 2, 4], 95), percentile([], 50)]).toEqual([4, 10, null]);
});

test("viewer keys hide who viewed and differ by session, address and agent", () => {
  const secret = "s".repeat(32);
  const bySession = viewerKey(secret, { sessionId: "abc", ip: "203.0.113.9", userAgent: "A" });
  expect(bySession).toBe(viewerKey(secret, { sessionId: "abc" }));
  expect(bySession).not.toContain("203.0.113.9");
  expect(viewerKey(secret, { ip: "203.0.113.9", userAgent: "A" })).not.toBe(viewerKey(secret, { ip: "203.0.113.9", userAgent: "B" }));
  expect(viewerKey("t".repeat(32), { sessionId: "abc" })).not.toBe(bySession);
});

test("the memory store deduplicates for 30 minutes, counts a viewer once a day as unique, and keeps a batch whose apply failed", async () => {
  const store = new MemoryViewStore();
  const at = Date.UTC(2026, 0, 1, 10);
  expect(await store.record("m1", "v1", at)).toBe(true);
  expect(await store.record("m1", "v1", at + 29 * 60_000)).toBe(false);
  expect(await store.record("m1", "v1", at + 31 * 60_000)).toBe(true);
  expect(await store.record("m1", "v2", at)).toBe(true);
  await expect(store.flush(async () => Promise.reject(new Error("database down")), at + HOUR)).rejects.toThrow("database down");
  const batches: ViewBatch[] = [];
  expect(await store.flush(async (batch) => void batches.push(batch), at + HOUR)).toBe(3);
  expect(batches[0]?.deltas).toEqual([{ mediaId: "m1", hour: at, views: 3, uniqueViewers: 2 }]);
  expect(await store.flush(async () => undefined, at + HOUR)).toBe(0);
});

test("pending counts that are not a count field are ignored; CSV of a series", () => {
  expect(deltasOf([["v:100:m", 2], ["u:100:m", 1], ["junk", 5], ["v:100:n", -1]])).toEqual([{ mediaId: "m", hour: 100, views: 2, uniqueViewers: 1 }]);
  const csv = seriesCsv({ metric: "views", label: "Views", description: "", bucket: "1h", points: [{ t: "2026-01-01T00:00:00.000Z", value: 3 }, { t: "2026-01-01T01:00:00.000Z", value: null }] });
  expect(csv).toBe("t,views\r\n2026-01-01T00:00:00.000Z,3\r\n2026-01-01T01:00:00.000Z,\r\n");
});

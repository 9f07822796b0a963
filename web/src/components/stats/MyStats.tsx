import "./stats.css";
import { useEffect, useMemo, useState } from "preact/hooks";
import { formatBytes } from "../../api";
import { formatTime, statsApi, timeOf } from "../../stats-api";
import type { MyStats as MyStatsBody } from "../../stats-api";
import { PALETTE } from "./chart-specs";
import { DataTable, useCsvUrl } from "./DataTable";
import { TimeChart } from "./TimeChart";

type Loaded = { state: "loading" } | { state: "failed"; message: string } | { state: "ready"; stats: MyStatsBody };

const ITEM_COLUMNS = [{ name: "Item" }, { name: "Views", numeric: true }, { name: "Different viewers", numeric: true }];
const UPLOAD_HEADER = ["Time", "Uploads"];

/** Every member's own figures: storage against the quota, uploads over time, and the views of each item. */
export function MyStats() {
  const [loaded, setLoaded] = useState<Loaded>({ state: "loading" });
  useEffect(() => {
    statsApi.mine().then(
      (stats) => setLoaded({ state: "ready", stats }),
      (error: Error) => setLoaded({ state: "failed", message: error.message }),
    );
  }, []);
  return (
    <section class="stats-page" aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>My stats</h1>
      {loaded.state === "loading" && <p class="loading" role="status">Loading your figures…</p>}
      {loaded.state === "failed" && <p class="error" role="alert">{loaded.message}</p>}
      {loaded.state === "ready" && <MyFigures stats={loaded.stats} />}
    </section>
  );
}

function MyFigures({ stats }: { readonly stats: MyStatsBody }) {
  const share = stats.quotaBytes > 0 ? stats.usedBytes / stats.quotaBytes : 0;
  const times = useMemo(() => stats.uploads.map(timeOf), [stats]);
  const lines = useMemo(() => [{ name: "Uploads", color: PALETTE[0], values: stats.uploads.map((point) => point.value) }], [stats]);
  const uploadRows = useMemo(() => stats.uploads.map((point) => [new Date(timeOf(point)).toISOString(), point.value]), [stats]);
  const uploadsCsv = useCsvUrl(UPLOAD_HEADER, uploadRows);
  const items = useMemo(() => ({
    rows: stats.items.map((item) => [item.title || "Untitled", item.views.toLocaleString("en"), item.uniqueViewers.toLocaleString("en")]),
    csv: stats.items.map((item) => [item.title ?? "", item.views, item.uniqueViewers]),
  }), [stats]);
  const hasUploads = stats.uploads.some((point) => (point.value ?? 0) > 0);
  const sentence = "How many files you uploaded on each day.";

  return (
    <>
      <section class="stats-card" aria-labelledby="my-storage-title">
        <h2 id="my-storage-title">Storage</h2>
        <p class="stats-sentence">How much of your storage space your uploads take up.</p>
        <label for="my-storage-meter">
          {formatBytes(stats.usedBytes)} used of {formatBytes(stats.quotaBytes)} ({Math.round(share * 100)} %)
        </label>
        <meter id="my-storage-meter" min={0} max={stats.quotaBytes || 1} value={stats.usedBytes} high={stats.quotaBytes * 0.9} />
      </section>
      <section class="stats-card chart-card" aria-labelledby="my-uploads-title" data-chart="my-uploads">
        <h2 id="my-uploads-title">My uploads over time</h2>
        <p class="stats-sentence">{sentence}</p>
        {hasUploads ? (
          <>
            <TimeChart times={times} lines={lines} unit="count" label={`My uploads over time: a chart. ${sentence} The numbers are in the table below it.`} />
            <details class="chart-numbers">
              <summary>The numbers behind “My uploads over time”</summary>
              <div class="table-scroll" tabIndex={0} role="region" aria-label="The numbers behind My uploads over time">
                <table>
                  <caption class="visually-hidden">My uploads over time</caption>
                  <thead><tr><th scope="col">Day</th><th scope="col" class="num">Uploads</th></tr></thead>
                  <tbody>
                    {stats.uploads.map((point) => (
                      <tr key={String(point.t)}><th scope="row">{formatTime(timeOf(point), "1d")}</th><td class="num">{point.value ?? "–"}</td></tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </details>
          </>
        ) : (
          <p class="empty">Your uploads will appear here, day by day, once you upload pictures, videos or sound.</p>
        )}
        <p class="csv-links"><a href={uploadsCsv} download="my-uploads.csv" data-csv="my-uploads">Download “My uploads over time” as CSV</a></p>
      </section>
      <DataTable id="my-items" title="Views of my items" sentence="How many times each of your items was opened by other people, and by how many different people."
        empty="Once other people open your items, each item will be listed here with its views."
        columns={ITEM_COLUMNS} rows={items.rows} csvRows={items.csv} />
    </>
  );
}

import "./stats.css";
import { navigate } from "../../store";
import { rangeQuery, summaryPath } from "../../stats-api";
import type { StatsRange } from "../../stats-api";
import { ChartCard } from "./ChartCard";
import { DASHBOARD_CHARTS } from "./chart-specs";
import { KpiTiles } from "./KpiTiles";
import { previousWords, rangeTitle, spanWords } from "./range-words";
import { RangePicker } from "./RangePicker";
import { SummaryTables } from "./SummaryTables";
import { isEmptySite, useSummary } from "./useSummary";

/** The site in numbers, for administrators: headline figures, charts over time and the top lists. */
export function AdminStats({ range }: { readonly range: StatsRange }) {
  const loaded = useSummary(range);
  return (
    <section class="stats-page" aria-labelledby="page-title">
      <div class="stats-head">
        <h1 id="page-title" tabIndex={-1}>Statistics</h1>
        <a class="button-link" href={`#/admin/report?${rangeQuery(range)}`}>Printable report</a>
      </div>
      <RangePicker range={range} onChange={(next) => navigate(`/admin/stats?${rangeQuery(next)}`)} />
      {loaded.state === "loading" && <p class="loading" role="status">Loading the figures…</p>}
      {loaded.state === "failed" && <p class="error" role="alert">{loaded.message}</p>}
      {loaded.state === "ready" && (
        <>
          <p class="stats-span">
            {rangeTitle(range)}: {spanWords(loaded.summary.range.from, loaded.summary.range.to)}.{" "}
            <a href={summaryPath(range, "csv")} download="summary.csv" data-csv="summary">
              Download the summary as CSV
            </a>
          </p>
          {isEmptySite(loaded.summary) && (
            <div class="stats-empty" role="status">
              <h2>No figures yet</h2>
              <p>
                Shoal takes a snapshot of the site every hour. After the first one, this page shows how many members
                there are, how many pictures, videos and sound files they upload, how often items are viewed and how
                much space they take.
              </p>
            </div>
          )}
          <KpiTiles kpis={loaded.summary.kpis} previousWords={previousWords(range)} />
          <div class="chart-grid">
            {DASHBOARD_CHARTS.map((spec) => (
              <ChartCard key={spec.id} spec={spec} from={loaded.summary.range.from} to={loaded.summary.range.to} bucket={loaded.summary.range.bucket} />
            ))}
          </div>
          <SummaryTables summary={loaded.summary} />
        </>
      )}
    </section>
  );
}

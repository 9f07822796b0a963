import "./stats.css";
import { rangeQuery } from "../../stats-api";
import type { StatsRange } from "../../stats-api";
import { ChartCard } from "./ChartCard";
import { DASHBOARD_CHARTS } from "./chart-specs";
import { KpiTiles } from "./KpiTiles";
import { previousWords, rangeTitle, spanWords } from "./range-words";
import { SummaryTables } from "./SummaryTables";
import { isEmptySite, useSummary } from "./useSummary";

/** Charts drawn at this width fit an A4 or Letter page inside the print margins. */
const PAPER_CHART_WIDTH = 640;

/** The same figures as the dashboard, laid out for paper: one section per page, charts sized to fit. */
export function AdminReport({ range }: { readonly range: StatsRange }) {
  const loaded = useSummary(range);
  return (
    <article class="report" aria-labelledby="page-title">
      <div class="report-actions no-print">
        <a href={`#/admin/stats?${rangeQuery(range)}`}>Back to the statistics</a>
        <button type="button" class="primary" onClick={() => window.print()}>Print or save as PDF</button>
      </div>
      <h1 id="page-title" tabIndex={-1}>Shoal report: {rangeTitle(range)}</h1>
      {loaded.state === "loading" && <p class="loading" role="status">Loading the figures…</p>}
      {loaded.state === "failed" && <p class="error" role="alert">{loaded.message}</p>}
      {loaded.state === "ready" && (
        <>
          <p class="stats-span">
            {spanWords(loaded.summary.range.from, loaded.summary.range.to)}, compared with {previousWords(range)}. Made on{" "}
            {new Date().toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" })}.
          </p>
          {isEmptySite(loaded.summary) && (
            <p class="stats-empty" role="status">
              There are no figures for this period yet. Once Shoal has taken its first hourly snapshot, this report
              shows members, uploads, views and storage over time.
            </p>
          )}
          <section class="report-section" aria-labelledby="report-headlines">
            <h2 id="report-headlines">Headline figures</h2>
            <KpiTiles kpis={loaded.summary.kpis} previousWords={previousWords(range)} />
          </section>
          <section class="report-section" aria-labelledby="report-charts">
            <h2 id="report-charts">Over time</h2>
            {DASHBOARD_CHARTS.map((spec) => (
              <ChartCard key={spec.id} spec={spec} from={loaded.summary.range.from} to={loaded.summary.range.to}
                bucket={loaded.summary.range.bucket} width={PAPER_CHART_WIDTH} headingLevel={3} />
            ))}
          </section>
          <section class="report-section" aria-labelledby="report-lists">
            <h2 id="report-lists">Top lists</h2>
            <SummaryTables summary={loaded.summary} headingLevel={3} />
          </section>
        </>
      )}
    </article>
  );
}

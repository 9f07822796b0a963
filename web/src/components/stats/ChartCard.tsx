import { useEffect, useMemo, useState } from "preact/hooks";
import { bucketWords, formatTime, formatValue, seriesPath, statsApi, timeOf } from "../../stats-api";
import type { Series } from "../../stats-api";
import { PALETTE } from "./chart-specs";
import type { ChartSpec } from "./chart-specs";
import { TimeChart } from "./TimeChart";
import type { ChartLine } from "./TimeChart";

interface Props {
  readonly spec: ChartSpec;
  readonly from: string;
  readonly to: string;
  /** The bucket the summary chose, used for the words until the series answer. */
  readonly bucket: string;
  /** A fixed chart width for paper. */
  readonly width?: number;
  readonly headingLevel?: 2 | 3;
}

type Loaded = { state: "loading" } | { state: "failed"; message: string } | { state: "ready"; series: Series[] };

/** One chart of the dashboard: heading, plain sentence, the drawing, its numbers as a table, CSV downloads. */
export function ChartCard({ spec, from, to, bucket, width, headingLevel = 2 }: Props) {
  const [loaded, setLoaded] = useState<Loaded>({ state: "loading" });

  useEffect(() => {
    let live = true;
    setLoaded({ state: "loading" });
    Promise.all(spec.lines.map((line) => statsApi.series(line.metric, from, to))).then(
      (series) => live && setLoaded({ state: "ready", series }),
      (error: Error) => live && setLoaded({ state: "failed", message: error.message }),
    );
    return () => {
      live = false;
    };
  }, [spec, from, to]);

  const per = bucketWords(loaded.state === "ready" ? loaded.series[0]?.bucket ?? bucket : bucket);
  const series = loaded.state === "ready" ? loaded.series : [];
  const { times, lines } = useMemo(() => alignLines(spec, series), [spec, series]);
  // Counts of events come back as zeros for empty periods: a chart of nothing but zeros has nothing to show yet.
  const hasFigures = lines.some((line) => line.values.some((value) => value !== null && value !== 0));
  const title = spec.title(per);
  const sentence = spec.sentence(per);
  const Heading = headingLevel === 2 ? "h2" : "h3";
  const id = `chart-${spec.id}`;

  return (
    <section class="stats-card chart-card" aria-labelledby={`${id}-title`} data-chart={spec.id}>
      <Heading id={`${id}-title`}>{title}</Heading>
      <p class="stats-sentence">{sentence}</p>
      {loaded.state === "loading" && <p class="loading" role="status">Loading…</p>}
      {loaded.state === "failed" && <p class="error" role="alert">{loaded.message}</p>}
      {loaded.state === "ready" && !hasFigures && <p class="empty">{spec.empty}</p>}
      {loaded.state === "ready" && hasFigures && (
        <>
          <TimeChart times={times} lines={lines} unit={spec.unit} label={`${title}: a chart. ${sentence} The numbers are in the table below it.`} width={width} />
          <details class="chart-numbers">
            <summary>The numbers behind “{title}”</summary>
            <div class="table-scroll" tabIndex={0} role="region" aria-label={`The numbers behind ${title}`}>
              <table>
                <caption class="visually-hidden">{title}</caption>
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    {lines.map((line) => <th key={line.name} scope="col" class="num">{line.name}</th>)}
                  </tr>
                </thead>
                <tbody>
                  {times.map((time, index) => (
                    <tr key={time}>
                      <th scope="row">{formatTime(time, series[0]?.bucket ?? bucket)}</th>
                      {lines.map((line) => <td key={line.name} class="num">{formatValue(line.values[index], spec.unit)}</td>)}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </details>
        </>
      )}
      <p class="csv-links">
        Download as CSV:{" "}
        {spec.lines.map((line, index) => (
          <span key={line.metric}>
            {index > 0 && ", "}
            <a href={seriesPath(line.metric, from, to, "csv")} download={`${line.metric}.csv`} data-metric={line.metric}>
              {spec.lines.length > 1 ? line.name : title}
            </a>
          </span>
        ))}
      </p>
    </section>
  );
}

/** The series on one time axis: every time any of them has, and each line's value there (null where it has none). */
function alignLines(spec: ChartSpec, series: readonly Series[]): { times: number[]; lines: ChartLine[] } {
  const times = [...new Set(series.flatMap((one) => one.points.map(timeOf)))].sort((a, b) => a - b);
  const lines = spec.lines.map((line, index) => {
    const byTime = new Map((series[index]?.points ?? []).map((point) => [timeOf(point), point.value]));
    return { name: line.name, color: PALETTE[index % PALETTE.length], values: times.map((time) => byTime.get(time) ?? null) };
  });
  return { times, lines };
}

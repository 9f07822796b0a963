import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatValue } from "../../stats-api";
import type { Unit } from "../../stats-api";

export interface ChartLine {
  readonly name: string;
  readonly color: string;
  readonly values: readonly (number | null)[];
}

interface Props {
  /** Milliseconds since the epoch, one per point. */
  readonly times: readonly number[];
  readonly lines: readonly ChartLine[];
  readonly unit: Unit;
  /** What the chart shows, read out by screen readers in place of the drawing. */
  readonly label: string;
  /** A fixed width in CSS pixels (the printed report); otherwise the chart follows its box. */
  readonly width?: number;
  readonly height?: number;
}

/** Tick labels in the words the rest of the page uses: times within two days, days within a year and a half, else months. */
function timeTicks(ticks: number[]): string[] {
  const span = (ticks[ticks.length - 1] ?? 0) - (ticks[0] ?? 0);
  const options: Intl.DateTimeFormatOptions =
    span <= 2 * 86_400 ? { hour: "2-digit", minute: "2-digit" } : span <= 540 * 86_400 ? { day: "numeric", month: "short" } : { month: "short", year: "numeric" };
  return ticks.map((tick) => new Date(tick * 1000).toLocaleString("en-GB", options));
}

function cssColor(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** A time chart drawn by uPlot on a canvas; the numbers themselves are in the table beside it. */
export function TimeChart({ times, lines, unit, label, width, height = 240 }: Props) {
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const element = box.current;
    if (!element) return undefined;
    const text = cssColor("--text", "#1b2428");
    const grid = cssColor("--border", "#cfd8dc");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const options: uPlot.Options = {
      width: width ?? Math.max(element.clientWidth, 280),
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { ...axis, values: (_chart, ticks) => timeTicks(ticks) },
        { ...axis, size: 72, values: (_chart, ticks) => ticks.map((tick) => formatValue(tick, unit)) },
      ],
      series: [
        {},
        ...lines.map((line) => ({ label: line.name, stroke: line.color, width: 2, points: { show: times.length < 40 } })),
      ],
    };
    const data = [times.map((time) => time / 1000), ...lines.map((line) => [...line.values])] as uPlot.AlignedData;
    const chart = new uPlot(options, data, element);
    let observer: ResizeObserver | undefined;
    if (width === undefined) {
      observer = new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 280), height }));
      observer.observe(element);
    }
    return () => {
      observer?.disconnect();
      chart.destroy();
    };
  }, [times, lines, unit, width, height]);

  return (
    <div class="chart-frame">
      <div class="chart-canvas" ref={box} role="img" aria-label={label} />
      {lines.length > 1 && (
        <ul class="chart-legend" aria-hidden="true">
          {lines.map((line) => (
            <li key={line.name}><span class={`swatch swatch--${lines.indexOf(line)}`} />{line.name}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

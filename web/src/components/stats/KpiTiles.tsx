import { formatChange, formatValue, unitOf } from "../../stats-api";
import type { Kpi } from "../../stats-api";

interface Props {
  readonly kpis: readonly Kpi[];
  /** The period compared against, in words: "the 7 days before". */
  readonly previousWords: string;
}

/** The headline figures of the period, each with its change against the period before. */
export function KpiTiles({ kpis, previousWords }: Props) {
  return (
    <ul class="kpi-tiles" aria-label="Headline figures">
      {kpis.map((kpi) => {
        const unit = unitOf(kpi.metric);
        const change = formatChange(kpi.change);
        const direction = kpi.change === null || Math.round(kpi.change * 100) === 0 ? "flat" : kpi.change > 0 ? "up" : "down";
        return (
          <li key={kpi.metric} class="kpi" data-metric={kpi.metric}>
            <span class="kpi-label">{kpi.label}</span>
            <span class="kpi-value">{formatValue(kpi.value, unit)}</span>
            <span class={`kpi-change kpi-change--${direction}`}>
              {change === null
                ? "Nothing to compare with yet"
                : `${change} on ${previousWords} (${formatValue(kpi.previous, unit)})`}
            </span>
          </li>
        );
      })}
    </ul>
  );
}

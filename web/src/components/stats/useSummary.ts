import { useEffect, useState } from "preact/hooks";
import { statsApi } from "../../stats-api";
import type { StatsRange, Summary } from "../../stats-api";

export type SummaryState = { state: "loading" } | { state: "failed"; message: string } | { state: "ready"; summary: Summary };

/** The summary of a range, fetched again whenever the range changes. */
export function useSummary(range: StatsRange): SummaryState {
  const [loaded, setLoaded] = useState<SummaryState>({ state: "loading" });
  const key = JSON.stringify(range);
  useEffect(() => {
    let live = true;
    setLoaded({ state: "loading" });
    statsApi.summary(range).then(
      (summary) => live && setLoaded({ state: "ready", summary }),
      (error: Error) => live && setLoaded({ state: "failed", message: error.message }),
    );
    return () => {
      live = false;
    };
  }, [key]);
  return loaded;
}

/** Whether the site has no figures at all yet: no snapshot has been taken. */
export function isEmptySite(summary: Summary): boolean {
  return summary.kpis.every((kpi) => !kpi.value) && !summary.topUploaders.length && !summary.topItems.length && !summary.failures.length;
}

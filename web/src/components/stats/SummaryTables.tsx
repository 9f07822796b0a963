import { useMemo } from "preact/hooks";
import { formatBytes, reasonText } from "../../api";
import type { Summary } from "../../stats-api";
import { DataTable } from "./DataTable";

interface Props {
  readonly summary: Summary;
  readonly headingLevel?: 2 | 3;
}

const UPLOADER_COLUMNS = [{ name: "Member" }, { name: "Storage used", csvName: "Bytes", numeric: true }, { name: "Items", numeric: true }];
const ITEM_COLUMNS = [{ name: "Item" }, { name: "Owner" }, { name: "Views", numeric: true }, { name: "Different viewers", numeric: true }];
const FAILURE_COLUMNS = [{ name: "Reason" }, { name: "Code" }, { name: "Failed uploads", numeric: true }];

/** Top uploaders, top items and failures by reason: shown in words, downloadable as the API's numbers. */
export function SummaryTables({ summary, headingLevel = 2 }: Props) {
  const uploaders = useMemo(() => ({
    rows: summary.topUploaders.map((row) => [row.name ?? "A deleted account", formatBytes(row.bytes), row.items.toLocaleString("en")]),
    csv: summary.topUploaders.map((row) => [row.name ?? "", row.bytes, row.items]),
  }), [summary]);
  const items = useMemo(() => ({
    rows: summary.topItems.map((row) => [row.title || "Untitled", row.ownerName ?? "–", row.views.toLocaleString("en"), row.uniqueViewers.toLocaleString("en")]),
    csv: summary.topItems.map((row) => [row.title ?? "", row.ownerName ?? "", row.views, row.uniqueViewers]),
  }), [summary]);
  const failures = useMemo(() => ({
    rows: summary.failures.map((row) => [reasonText(row.reason), row.reason, row.count.toLocaleString("en")]),
    csv: summary.failures.map((row) => [reasonText(row.reason), row.reason, row.count]),
  }), [summary]);

  return (
    <div class="stats-tables">
      <DataTable id="top-uploaders" title="Top uploaders" headingLevel={headingLevel}
        sentence="The members whose uploads take up the most space."
        empty="The members who upload the most will be listed here."
        columns={UPLOADER_COLUMNS} rows={uploaders.rows} csvRows={uploaders.csv} />
      <DataTable id="top-items" title="Most viewed items" headingLevel={headingLevel}
        sentence="The items people opened most often in this period."
        empty="The most viewed items will be listed here once people open each other's uploads."
        columns={ITEM_COLUMNS} rows={items.rows} csvRows={items.csv} />
      <DataTable id="failures-by-reason" title="Why uploads failed" headingLevel={headingLevel}
        sentence="Uploads that could not be made ready to show in this period, by the reason."
        empty="No upload has failed in this period. Failures would be listed here with their reason."
        columns={FAILURE_COLUMNS} rows={failures.rows} csvRows={failures.csv} />
    </div>
  );
}

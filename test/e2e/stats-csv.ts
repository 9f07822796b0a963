/** Reading the statistics pages' CSV downloads and comparing them with the API's JSON. */

export interface SeriesJson {
  readonly metric: string;
  readonly bucket: string;
  readonly points: readonly { readonly t: string | number; readonly value: number | null }[];
}

export interface SummaryJson {
  readonly range: { readonly from: string; readonly to: string; readonly bucket: string };
  readonly kpis: readonly { readonly metric: string; readonly value: number | null; readonly previous: number | null; readonly change: number | null }[];
  readonly topUploaders: readonly { readonly name: string | null; readonly bytes: number; readonly items: number }[];
  readonly topItems: readonly { readonly title: string | null; readonly ownerName: string | null; readonly views: number; readonly uniqueViewers: number }[];
  readonly failures: readonly { readonly reason: string; readonly count: number }[];
}

/** RFC 4180 records (quoted fields, doubled quotes, CRLF or LF line ends); the trailing empty line dropped. */
export function csvRecords(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') {
        field += '"';
        index++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ",") {
      record.push(field);
      field = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text[index + 1] === "\n") index++;
      record.push(field);
      records.push(record);
      record = [];
      field = "";
    } else field += char;
  }
  if (field !== "" || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  return records;
}

function timeOf(t: string | number): number {
  return typeof t === "number" ? t : Date.parse(t);
}

/** The series CSV: a header, then one row per point with its time first and its value last. */
export function expectCsvMatchesSeries(href: string, records: string[][], json: SeriesJson): void {
  const [header, ...rows] = records;
  expect({ href, header: header?.length }).toEqual({ href, header: expect.any(Number) });
  const fromCsv = rows.map((row) => ({ t: timeOf(/^\d+$/.test(row[0] ?? "") ? Number(row[0]) : row[0] ?? ""), value: row.at(-1) === "" ? null : Number(row.at(-1)) }));
  const fromJson = json.points.map((point) => ({ t: timeOf(point.t), value: point.value }));
  expect({ href, points: fromCsv }).toEqual({ href, points: fromJson });
}

/** The three tables' CSV files (made in the page from the summary) against the summary itself. */
export function expectCsvMatchesSummary(tables: Record<string, string[][]>, summary: SummaryJson): void {
  expect(tables["top-uploaders"]).toEqual([
    ["Member", "Bytes", "Items"],
    ...summary.topUploaders.map((row) => [row.name ?? "", String(row.bytes), String(row.items)]),
  ]);
  expect(tables["top-items"]).toEqual([
    ["Item", "Owner", "Views", "Different viewers"],
    ...summary.topItems.map((row) => [row.title ?? "", row.ownerName ?? "", String(row.views), String(row.uniqueViewers)]),
  ]);
  expect(tables["failures-by-reason"]?.map((row) => [row[1], row[2]])).toEqual([
    ["Code", "Failed uploads"],
    ...summary.failures.map((row) => [row.reason, String(row.count)]),
  ]);
}

/** The summary CSV's rows by their first column (range, kpi, top_uploader, top_item, failure), header rows left out. */
export function summarySections(records: string[][]): Record<string, string[][]> {
  const sections: Record<string, string[][]> = {};
  for (const record of records) {
    const [section, ...rest] = record;
    if (!section || section === "section") continue;
    (sections[section] ??= []).push(rest);
  }
  return sections;
}

function csvNumber(value: number | null): string {
  return value === null ? "" : String(value);
}

/** The server's summary CSV against the summary JSON, and the page's table downloads against both. */
export function expectSummaryCsvMatches(sections: Record<string, string[][]>, tables: Record<string, string[][]>, summary: SummaryJson): void {
  expect(sections.kpi ?? []).toEqual(summary.kpis.map((kpi) => [kpi.metric, expect.any(String), csvNumber(kpi.value), csvNumber(kpi.previous), csvNumber(kpi.change)]));
  expect((sections.top_uploader ?? []).map((row) => row.slice(1))).toEqual(tables["top-uploaders"]?.slice(1));
  expect((sections.top_item ?? []).map((row) => row.slice(1))).toEqual(tables["top-items"]?.slice(1));
  expect(sections.failure ?? []).toEqual(tables["failures-by-reason"]?.slice(1).map((row) => [row[1], row[2]]));
}

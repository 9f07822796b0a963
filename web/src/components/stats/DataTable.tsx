import { useEffect, useMemo } from "preact/hooks";
import { toCsv } from "../../stats-api";

type Cell = string | number | null;

interface Props {
  readonly id: string;
  readonly title: string;
  /** One sentence on what the table lists. */
  readonly sentence: string;
  /** What will be listed once there is something to list. */
  readonly empty: string;
  readonly columns: readonly { readonly name: string; readonly numeric?: boolean; readonly csvName?: string }[];
  /** The cells as shown. */
  readonly rows: readonly (readonly Cell[])[];
  /** The same rows as raw numbers for the CSV file (same columns). */
  readonly csvRows: readonly (readonly Cell[])[];
  readonly headingLevel?: 2 | 3;
}

/** A blob: URL for a CSV file of these rows, released when the table goes. */
export function useCsvUrl(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const url = useMemo(() => URL.createObjectURL(new Blob([toCsv(header, rows)], { type: "text/csv" })), [header, rows]);
  useEffect(() => () => URL.revokeObjectURL(url), [url]);
  return url;
}

/** A titled table of figures with a CSV download of the same figures. */
export function DataTable({ id, title, sentence, empty, columns, rows, csvRows, headingLevel = 2 }: Props) {
  const header = useMemo(() => columns.map((column) => column.csvName ?? column.name), [columns]);
  const csvUrl = useCsvUrl(header, csvRows);
  const Heading = headingLevel === 2 ? "h2" : "h3";
  return (
    <section class="stats-card stats-table" aria-labelledby={`${id}-title`}>
      <Heading id={`${id}-title`}>{title}</Heading>
      <p class="stats-sentence">{sentence}</p>
      {rows.length === 0 ? (
        <p class="empty">{empty}</p>
      ) : (
        <div class="table-scroll" tabIndex={0} role="region" aria-label={title}>
          <table>
            <thead>
              <tr>{columns.map((column) => <th key={column.name} scope="col" class={column.numeric ? "num" : undefined}>{column.name}</th>)}</tr>
            </thead>
            <tbody>
              {rows.map((row, index) => (
                <tr key={index}>
                  {row.map((cell, column) => (
                    <td key={column} class={columns[column]?.numeric ? "num" : undefined}>{cell ?? "–"}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p class="csv-links">
        <a href={csvUrl} download={`${id}.csv`} data-csv={id}>Download “{title}” as CSV</a>
      </p>
    </section>
  );
}

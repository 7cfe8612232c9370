/** A column of a table: its heading and how to show a row's value. */
export interface Column<T> {
  heading: string;
  value: (row: T) => unknown;
}

/** Text for a cell: `-` for nothing, dates as they came (ISO), the rest as strings. */
export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  return String(value);
}

/** A plain table for terminals: upper-case headings, columns two spaces apart, no borders (like kubectl). */
export function renderTable<T>(columns: Column<T>[], rows: T[]): string {
  const cells = rows.map((r) => columns.map((c) => cell(c.value(r))));
  const headings = columns.map((c) => c.heading.toUpperCase());
  const widths = headings.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headings), ...cells.map(line)].join('\n');
}

/** Field: value lines for one thing (describe), names aligned. */
export function renderFields(fields: [string, unknown][]): string {
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}  ${cell(v)}`).join('\n');
}

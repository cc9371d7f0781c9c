/*
 * The benchmarks' report on stdout: sections (a title, a table of figure, measured, ceiling, ratio,
 * goal; lines; notes), then the JSON line.
 */

type Cell = string | number | null | undefined;

export interface TableRow {
  figure: string;
  measured?: Cell;
  ceiling?: Cell;
  ratio?: number | null;
  goal?: string;
}

/** A row from its cells in the table's order; a figure of '-' is a rule. */
export function row(
  figure: string,
  measured?: Cell,
  ceiling?: Cell,
  ratio?: number | null,
  goal?: string,
): TableRow {
  return { figure, measured, ceiling, ratio, goal };
}

export const RULE: TableRow = { figure: '-' };

/** The notes whose condition held (a falsy entry is no note). */
export function present(notes: readonly (string | false | null | undefined)[]): string[] {
  return notes.filter((note): note is string => typeof note === 'string');
}

/** 12345.6 → "12,346"; null → "-". */
export function fmt(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

const text = (cell: Cell): string => (cell === undefined || cell === null ? '' : String(cell));

/** The rows as a fixed-width table; a row whose figure is '-' is a rule. */
export function renderTable(rows: readonly TableRow[]): string {
  const cells = rows.map((r) => [
    r.figure,
    text(r.measured),
    text(r.ceiling),
    r.ratio === undefined || r.ratio === null ? '' : `${r.ratio.toFixed(2)}x`,
    r.goal ?? '',
  ]);
  const header = ['figure', 'measured', 'ceiling (same run)', 'ratio', 'goal'];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...cells.filter((c) => c[0] !== '-').map((c) => c[i].length)),
  );
  const line = (c: string[]): string =>
    [c[0].padEnd(widths[0]), ...c.slice(1, 4).map((v, i) => v.padStart(widths[i + 1])), c[4]]
      .join('  ')
      .trimEnd();
  const rule = '-'.repeat(widths.reduce((sum, w) => sum + w + 2, 0));
  const body = cells.map((c) => (c[0] === '-' ? rule : line(c)));
  return [rule, line(header), rule, ...body, rule].join('\n');
}

export interface ReportSection {
  /** A heading, printed after an empty line. */
  title?: string;
  rows?: readonly TableRow[];
  /** Lines printed as they are, after the table. */
  lines?: readonly string[];
  /** Anomalies, each printed as "! note" after the lines. */
  notes?: readonly string[];
}

/** The sections as text, one line each (no trailing newline). */
export function renderReport(sections: ReportSection | readonly ReportSection[]): string {
  const out: string[] = [];
  const list = (Array.isArray(sections) ? sections : [sections]) as readonly ReportSection[];
  for (const section of list) {
    if (section.title !== undefined) out.push('', section.title);
    if (section.rows) out.push(renderTable(section.rows));
    out.push(...(section.lines ?? []), ...(section.notes ?? []).map((note) => `! ${note}`));
  }
  return out.join('\n');
}

/** Prints the report; with `json` (only when --json was given) one JSON object as the last line. */
export function printReport(
  sections: ReportSection | readonly ReportSection[],
  json?: unknown,
): void {
  process.stdout.write(`${renderReport(sections)}\n`);
  if (json !== undefined) printJson(json);
}

/** Prints `report` as one JSON line on stdout. */
export function printJson(report: unknown): void {
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

/** 1234.5 → "1,235/s"; null → "-". */
export function perSecond(value: number | null | undefined): string {
  return value === null || value === undefined ? '-' : `${fmt(value)}/s`;
}

/** 0.9876 → "98.8 %"; null → "-". */
export function percent(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined ? '-' : `${fmt(value * 100, digits)} %`;
}

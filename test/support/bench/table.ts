/* The benchmarks' printed table: figure, measured, ceiling, ratio, goal. */

export interface TableRow {
  figure: string;
  measured?: string | number | null;
  ceiling?: string | number | null;
  ratio?: number | null;
  goal?: string;
}

/** 12345.6 → "12,346"; null → "-". */
export function fmt(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** The rows as a fixed-width table; a row whose figure is '-' is a rule. */
export function renderTable(rows: readonly TableRow[]): string {
  const cells = rows.map((row) => [
    row.figure,
    row.measured === undefined || row.measured === null ? '' : String(row.measured),
    row.ceiling === undefined || row.ceiling === null ? '' : String(row.ceiling),
    row.ratio === undefined || row.ratio === null ? '' : `${row.ratio.toFixed(2)}x`,
    row.goal ?? '',
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
  return [
    rule,
    line(header),
    rule,
    ...cells.map((c) => (c[0] === '-' ? rule : line(c))),
    rule,
  ].join('\n');
}

/** Prints `report` as the last line of stdout, as every benchmark's `--json` promises. */
export function printJson(report: unknown): void {
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

import type { TableRow } from '../support/bench/report';

type Cell = TableRow['measured'];

/** A report table row from its cells in the table's order; a figure of '-' is a rule. */
export function row(
  figure: string,
  measured?: Cell,
  ceiling?: Cell,
  ratio?: number | null,
  goal?: string,
): TableRow {
  return { figure, measured, ceiling, ratio, goal };
}

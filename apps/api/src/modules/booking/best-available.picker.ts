import type { SeatMapRow } from '../catalog/seat-map';

/**
 * Best-available ranking (docs/on-sale.md): the smallest key wins, where a candidate's key is
 * (it strands a seat ? 1 : 0, section order, row order, |centre − row centre|, first seat number).
 * Seats are positions in the seat map; `free(position)` says whether a seat may be taken.
 */

/** A candidate: seat positions of one row, adjacent, in seat-number order. */
export type Block = readonly number[];

/**
 * Whether taking seats `first`…`last` from the free run `runStart`…`runEnd` (seat numbers) strands a
 * seat: a single free seat would be left between the block and the run's end. Where that is
 * unavoidable (the run one seat longer than the block) the orphan rule allows the hold, but the block
 * still ranks after every block that strands nothing.
 */
export function strandsSeat(
  first: number,
  last: number,
  runStart: number,
  runEnd: number,
): boolean {
  return first - runStart === 1 || runEnd - last === 1;
}

interface Ranked {
  block: Block;
  distance: number;
  first: number;
}

function byDistanceThenNumber(a: Ranked, b: Ranked): number {
  return a.distance - b.distance || a.first - b.first;
}

/**
 * Every block of `quantity` adjacent free seats in `rows` (in seat-map order), best first. Rows are
 * already in section and row order, so the key sorts within a row; stranding blocks go last.
 */
export function rankBlocks(
  rows: readonly SeatMapRow[],
  free: (position: number) => boolean,
  quantity: number,
): Block[] {
  const clean: Block[] = [];
  const stranding: Block[] = [];
  for (const row of rows) {
    const centre = (row.length + 1) / 2;
    const good: Ranked[] = [];
    const bad: Ranked[] = [];
    let number = 1;
    while (number <= row.length) {
      if (!free(row.first + number - 1)) {
        number += 1;
        continue;
      }
      const runStart = number;
      while (number <= row.length && free(row.first + number - 1)) number += 1;
      const runEnd = number - 1;
      for (let first = runStart; first + quantity - 1 <= runEnd; first += 1) {
        const last = first + quantity - 1;
        const block = Array.from({ length: quantity }, (_, i) => row.first + first - 1 + i);
        const ranked = { block, distance: Math.abs((first + last) / 2 - centre), first };
        (strandsSeat(first, last, runStart, runEnd) ? bad : good).push(ranked);
      }
    }
    clean.push(...good.sort(byDistanceThenNumber).map((r) => r.block));
    stranding.push(...bad.sort(byDistanceThenNumber).map((r) => r.block));
  }
  return [...clean, ...stranding];
}

/** Every free seat in `rows`, best first by the same key (a seat as a block of one). */
export function rankSeats(
  rows: readonly SeatMapRow[],
  free: (position: number) => boolean,
): number[] {
  return rankBlocks(rows, free, 1).map((block) => block[0]);
}

/** True when the positions are one run of adjacent seats in one row. */
export function nextToEachOther(
  rows: readonly SeatMapRow[],
  positions: readonly number[],
): boolean {
  const sorted = [...positions].sort((a, b) => a - b);
  const row = rows.find((r) => sorted[0] >= r.first && sorted[0] < r.first + r.length);
  if (!row || sorted[sorted.length - 1] >= row.first + row.length) return false;
  return sorted.every((position, i) => i === 0 || position === sorted[i - 1] + 1);
}

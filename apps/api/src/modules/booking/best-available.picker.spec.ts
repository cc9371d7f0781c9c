import type { SeatMapRow } from '../catalog/seat-map';
import { nextToEachOther, rankBlocks, rankSeats, strandsSeat } from './best-available.picker';

/** Rows of `length` seats in one section each, laid out one after the other. */
function rows(...lengths: number[]): SeatMapRow[] {
  let first = 0;
  return lengths.map((length, i) => {
    const row = { section: 'S', sectionIndex: 0, name: String.fromCharCode(65 + i), first, length };
    first += length;
    return row;
  });
}

/** A free() over a string of seat states: `.` free, `x` taken, rows concatenated. */
function states(layout: string): (position: number) => boolean {
  return (position) => layout[position] === '.';
}

/** Seat numbers (1-based) of a block in a single-row layout. */
const numbers = (block: readonly number[]): number[] => block.map((p) => p + 1);

describe('best-available picker', () => {
  it('ranks a free row of 10 from the centre outwards, ties to the lower numbers', () => {
    const ranked = rankBlocks(rows(10), states('..........'), 4);
    expect(ranked.slice(0, 3).map(numbers)).toEqual([
      [4, 5, 6, 7],
      [3, 4, 5, 6],
      [5, 6, 7, 8],
    ]);
    // Blocks that leave one seat at the row's end rank after every other block.
    expect(ranked.slice(-2).map(numbers)).toEqual([
      [2, 3, 4, 5],
      [6, 7, 8, 9],
    ]);
    expect(ranked).toHaveLength(7);
  });

  it('ranks rows front to back before distance from the centre', () => {
    const ranked = rankBlocks(rows(4, 4), states('xx......'), 2);
    expect(ranked[0]).toEqual([2, 3]);
    expect(ranked[1]).toEqual([4, 5]);
  });

  it('puts a stranding block in an earlier row after the clean ones of a later row', () => {
    // Row A: seats 1-5 free, 6 taken; taking 2-3 or 3-4 would strand a seat.
    const ranked = rankBlocks(rows(6, 4), states('.....x....'), 2);
    expect(ranked).toEqual([
      [3, 4],
      [0, 1],
      [6, 7],
      [8, 9],
      [2, 3],
      [1, 2],
      [7, 8],
    ]);
  });

  it('flags a block that leaves one seat, even where the orphan rule would allow it', () => {
    expect(strandsSeat(1, 2, 1, 3)).toBe(true);
    expect(strandsSeat(2, 3, 1, 3)).toBe(true);
    expect(strandsSeat(2, 3, 1, 5)).toBe(true);
    expect(strandsSeat(4, 5, 1, 5)).toBe(false);
    expect(strandsSeat(1, 3, 1, 3)).toBe(false);
  });

  it('prefers a later row to a block that strands a seat in an earlier one', () => {
    // Row A: A8-A10 free; a pair there leaves one seat whichever it is, so row B comes first.
    const ranked = rankBlocks(rows(10, 10), states('xxxxxxx.............'), 2);
    expect(ranked[0]).toEqual([14, 15]);
    // Row B's seven clean pairs, then row A's stranding ones, then row B's.
    expect(ranked.slice(7, 9)).toEqual([
      [7, 8],
      [8, 9],
    ]);
    expect(ranked).toHaveLength(11);
  });

  it('finds no block when no run is long enough', () => {
    expect(rankBlocks(rows(6), states('.x.x.x'), 2)).toEqual([]);
    expect(rankSeats(rows(6), states('.x.x.x'))).toHaveLength(3);
  });

  it('ranks single seats by the same key', () => {
    expect(rankSeats(rows(5), states('.....')).map((p) => p + 1)).toEqual([3, 1, 5, 2, 4]);
  });

  it('says whether seats sit together in one row', () => {
    const layout = rows(4, 4);
    expect(nextToEachOther(layout, [1, 2])).toBe(true);
    expect(nextToEachOther(layout, [2, 1])).toBe(true);
    expect(nextToEachOther(layout, [3, 4])).toBe(false);
    expect(nextToEachOther(layout, [0, 2])).toBe(false);
  });
});

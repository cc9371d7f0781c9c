import { isGa, type SectionSpec } from './event-sections';
import { unitLabel } from './seat-map';

export interface PlannedSeat {
  label: string;
  section: string;
  /** Row name (`D`) and seat number within the row (1 at one end); a GA unit has no row. */
  row: string | null;
  number: number;
  position: number;
  priceCents: number;
}

/** Spreadsheet-style row names: 0 → A, 25 → Z, 26 → AA, 27 → AB, … */
export function rowName(index: number): string {
  let name = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) {
    name = String.fromCharCode(65 + ((n - 1) % 26)) + name;
  }
  return name;
}

/**
 * Lays out an event's seats: rows are lettered across the whole event in section order (section 1
 * rows A–C, section 2 rows D–F, …), a label is row + number (`D12`). A general-admission section's
 * units are numbered within it (`GA1-1` … `GA1-1000`, the 1 counting GA sections).
 */
export function buildSeatMap(sections: SectionSpec[]): PlannedSeat[] {
  const seats: PlannedSeat[] = [];
  let row = 0;
  let gaIndex = 0;
  for (const section of sections) {
    if (isGa(section)) {
      gaIndex += 1;
      for (let number = 1; number <= section.capacity; number += 1) {
        seats.push({
          label: unitLabel(gaIndex, number),
          section: section.name,
          row: null,
          number,
          position: seats.length,
          priceCents: section.priceCents,
        });
      }
      continue;
    }
    for (let r = 0; r < section.rows; r += 1, row += 1) {
      const name = rowName(row);
      for (let number = 1; number <= section.seatsPerRow; number += 1) {
        seats.push({
          label: `${name}${number}`,
          section: section.name,
          row: name,
          number,
          position: seats.length,
          priceCents: section.priceCents,
        });
      }
    }
  }
  return seats;
}

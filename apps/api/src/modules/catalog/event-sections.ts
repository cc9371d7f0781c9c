/** A section as stored: seated (rows × seatsPerRow) or general admission (`kind: 'ga'`, capacity). */
export type SectionSpec =
  | { name: string; kind?: 'seated'; rows: number; seatsPerRow: number; priceCents: number }
  | { name: string; kind: 'ga'; capacity: number; priceCents: number };

export function isGa(section: SectionSpec): section is Extract<SectionSpec, { kind: 'ga' }> {
  return section.kind === 'ga';
}

export function capacityOf(section: SectionSpec): number {
  return isGa(section) ? section.capacity : section.rows * section.seatsPerRow;
}

/*
 * Catalog's public face, with CatalogService (the module's one export): the seat map, the seat
 * statuses and the label encodings other modules read. Nothing else in modules/catalog is imported
 * from outside it.
 */

export type OrphanPolicy = 'off' | 'strict';

export type SeatStatus = 'free' | 'held' | 'booked';

const STATUS_BY_LETTER: Readonly<Record<string, SeatStatus>> = {
  f: 'free',
  h: 'held',
  b: 'booked',
};

/** What `seatlock_seat_statuses` answers (one letter per seat, f/h/b) as statuses. */
export function decodeSeatStatuses(letters: string | null): SeatStatus[] {
  return Array.from(letters ?? '', (letter) => STATUS_BY_LETTER[letter]);
}

/** The label of unit `number` of the `gaIndex`-th (from 1) general-admission section: `GA2-17`. */
export function unitLabel(gaIndex: number, number: number): string {
  return `GA${gaIndex}-${number}`;
}

/** Which GA section (from 1) a unit label belongs to; null for a seat label. */
export function unitSectionIndex(label: string): number | null {
  const match = /^GA(\d+)-\d+$/.exec(label);
  return match ? Number(match[1]) : null;
}

/**
 * What booking needs to validate and place a hold without asking PostgreSQL: an event's immutable
 * seat map. Seats are the seated sections' only; GA units are counted in `units`.
 */
export interface SeatMap {
  eventId: string;
  currency: string;
  orphanPolicy: OrphanPolicy;
  prices: ReadonlyMap<string, number>;
  /** Every seat in position order, as the seat map endpoint lists them. */
  seats: readonly SeatMapEntry[];
  /** Rows in seat-map order (sections in event order, rows front to back). */
  rows: readonly SeatMapRow[];
  /** Section names in event order, seated and general admission. */
  sections: readonly string[];
  /** General-admission sections, in event order (unit labels count them from 1). */
  units: readonly UnitSection[];
}

/** A general-admission section: `capacity` units sold by quantity, none of them in `seats`. */
export interface UnitSection {
  name: string;
  /** 1 for the event's first GA section, as in its unit labels (`GA1-17`). */
  gaIndex: number;
  capacity: number;
  priceCents: number;
}

export interface SeatMapEntry {
  label: string;
  section: string;
  priceCents: number;
}

/** One row: its seats are positions `first` … `first + length - 1`, numbered 1 … `length`. */
export interface SeatMapRow {
  section: string;
  /** Index of the section in event order. */
  sectionIndex: number;
  name: string;
  first: number;
  length: number;
}

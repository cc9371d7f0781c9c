export type OrphanPolicy = 'off' | 'strict';

/** What booking needs to validate and place a hold without asking PostgreSQL: an event's immutable seat map. */
export interface SeatMap {
  eventId: string;
  currency: string;
  orphanPolicy: OrphanPolicy;
  prices: ReadonlyMap<string, number>;
  /** Every seat in position order, as the seat map endpoint lists them. */
  seats: readonly SeatMapEntry[];
  /** Rows in seat-map order (sections in event order, rows front to back). */
  rows: readonly SeatMapRow[];
  /** Section names in event order. */
  sections: readonly string[];
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

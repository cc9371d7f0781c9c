export type OrphanPolicy = 'off' | 'strict';

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

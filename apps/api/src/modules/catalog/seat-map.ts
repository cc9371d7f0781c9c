/** What booking needs to validate a hold without asking PostgreSQL: an event's immutable seat map. */
export interface SeatMap {
  eventId: string;
  currency: string;
  prices: ReadonlyMap<string, number>;
  /** Every seat in position order, as the seat map endpoint lists them. */
  seats: readonly SeatMapEntry[];
}

export interface SeatMapEntry {
  label: string;
  section: string;
  priceCents: number;
}

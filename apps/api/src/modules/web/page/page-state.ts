import type { Booking, CatalogEvent, EventsQuery, Section, SeatStatus } from './api-client';

/** A seated seat on screen: what the server last said about it, and its button. */
export interface SeatOnMap {
  status: SeatStatus;
  priceCents: number;
  currency: string;
  button: HTMLButtonElement;
}

/** A section on screen; `count` is the element showing how many are free. */
export interface SectionOnMap {
  section: Section;
  count: HTMLElement;
}

/** off, connecting, live, reconnecting, or unavailable (the stream was refused). */
export type Connection = 'off' | 'connecting' | 'live' | 'reconnecting' | 'unavailable';

/** Everything the page knows about the event on screen; one tab, one instance. */
export interface PageState {
  /** GET /events/{id} of the event on screen. */
  event: CatalogEvent | null;
  /** Bumped whenever another event is opened, so late answers for the previous one are dropped. */
  generation: number;
  /** By label: the seated seats on screen. */
  seats: Map<string, SeatOnMap>;
  /** By name: the sections on screen. */
  sections: Map<string, SectionOnMap>;
  selected: Set<string>;
  /** Chosen seats whose hold is being asked for: the stream may report them held first. */
  pending: Set<string>;
  /** By booking id: this customer's held and confirmed bookings for the event on screen. */
  holds: Map<string, Booking>;
  /** By booking id, then payment method: the Idempotency-Key of a payment that may need a retry. */
  paymentKeys: Map<string, Map<string, string>>;
  stream: EventSource | null;
  connection: Connection;
  /** The reason of an `event: stale`, kept until the next snapshot, reconnects included. */
  paused: string | null;
  /** The last stream message applied to the map. */
  lastSeq: number | null;
  /** The next page of GET /events (its Link header), if there is one. */
  nextEvents: EventsQuery | null;
}

export const state: PageState = {
  event: null,
  generation: 0,
  seats: new Map(),
  sections: new Map(),
  selected: new Set(),
  pending: new Set(),
  holds: new Map(),
  paymentKeys: new Map(),
  stream: null,
  connection: 'off',
  paused: null,
  lastSeq: null,
  nextEvents: null,
};

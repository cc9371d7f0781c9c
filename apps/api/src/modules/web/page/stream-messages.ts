import type { components, paths } from './api-schema';

/**
 * The seat stream's messages (GET /events/{id}/seats/stream, text/event-stream). The OpenAPI
 * document types the stream as a string, so these are written by hand from SeatStreamService's
 * frames; only the seat status comes from the generated schema.
 */

export type StreamSeatStatus = components['schemas']['SeatDto']['status'];

export interface SeatChange {
  label: string;
  status: StreamSeatStatus;
}

/** A section's units free to hold, seated or general admission. */
export interface SectionAvailability {
  name: string;
  available: number;
}

/** `event: snapshot`: every seated seat and section at `seq` (also the message's id). */
export interface SnapshotMessage {
  seq: number;
  seats: SeatChange[];
  sections: SectionAvailability[];
}

/** `event: seats`: one committed change, numbered `seq` in the event's stream. */
export interface SeatsMessage {
  seq: number;
  changes: SeatChange[];
  sections: SectionAvailability[];
}

/** `event: stale`: live updates paused (e.g. `redis_unavailable`) until the next snapshot. */
export interface StaleMessage {
  reason?: string;
}

/** The stream's named events and what each carries in its `data`. */
export interface SeatStreamMessages {
  snapshot: SnapshotMessage;
  seats: SeatsMessage;
  stale: StaleMessage;
}

/** Checked against the document's paths, so a moved route fails the typecheck here too. */
const STREAM_PATH = '/events/{eventId}/seats/stream' satisfies keyof paths;

export function seatStreamUrl(eventId: string): string {
  return STREAM_PATH.replace('{eventId}', encodeURIComponent(eventId));
}

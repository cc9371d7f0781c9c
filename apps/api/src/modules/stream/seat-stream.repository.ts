import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { decodeSeatStatuses, type SeatStatus } from '../catalog/seat-map';

/** A seat whose status changed, as the stream shows it. */
export interface SeatChange {
  label: string;
  status: SeatStatus;
}

/** A section's units free to hold (seated and GA), as on GET /events/{id}. */
export interface SectionAvailability {
  name: string;
  available: number;
}

/** One committed transaction's changes to one event, numbered in that event's stream. */
export interface StreamMessage {
  eventId: string;
  seq: number;
  changes: SeatChange[];
  sections: SectionAvailability[];
}

/** The event's state at `seq`: each seated seat's status in seat-map order, and the sections. */
export interface StreamSnapshot {
  seq: number;
  statuses: SeatStatus[];
  sections: SectionAvailability[];
}

interface BatchRow {
  event_id: string;
  seq: string;
  changes: (SeatChange & { unit: boolean })[];
  sections: SectionAvailability[];
}

/**
 * The seat_changes and seat_streams tables (migration 1764800000000): the changes the seats
 * trigger (database/functions/10-seats_record_changes.trigger.sql) recorded, taken in batches and numbered per event, and the snapshot a stream starts from.
 */
@Injectable()
export class SeatStreamRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Up to `limit` recorded changes, oldest first, as numbered messages; they are gone after. */
  async takeBatch(limit: number): Promise<StreamMessage[]> {
    const rows = await this.dataSource.query<BatchRow[]>(
      `SELECT event_id, seq, changes, sections FROM seatlock_stream_batch($1)`,
      [limit],
    );
    return rows.map((row) => ({
      eventId: row.event_id,
      seq: Number(row.seq),
      // GA units are not in the seat list: their section's count shows them.
      changes: row.changes
        .filter((change) => !change.unit)
        .map(({ label, status }) => ({ label, status })),
      sections: row.sections,
    }));
  }

  /** One statement, so the statuses are exactly those of the changes numbered up to `seq`. */
  async snapshot(eventId: string): Promise<StreamSnapshot> {
    const [row] = await this.dataSource.query<
      { seq: string | null; statuses: string | null; sections: SectionAvailability[] }[]
    >(
      `SELECT (SELECT seq FROM seat_streams WHERE event_id = $1) AS seq,
              seatlock_seat_statuses($1) AS statuses,
              seatlock_sections_available($1) AS sections`,
      [eventId],
    );
    return {
      seq: Number(row.seq ?? 0),
      statuses: decodeSeatStatuses(row.statuses),
      sections: row.sections,
    };
  }

  /** The last seq numbered for the event (0 before its first change). */
  async currentSeq(eventId: string): Promise<number> {
    const [row] = await this.dataSource.query<{ seq: string | null }[]>(
      `SELECT (SELECT seq FROM seat_streams WHERE event_id = $1) AS seq`,
      [eventId],
    );
    return Number(row.seq ?? 0);
  }
}

import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { isGa, type SectionSpec } from './event-sections';
import {
  decodeSeatStatuses,
  type OrphanPolicy,
  type SeatMap,
  type SeatMapRow,
  type SeatStatus,
  type UnitSection,
} from './seat-map';
import type { PlannedSeat } from './seat-map.builder';

/** A hold whose TTL passed counts as free everywhere it is shown (`s` is the seats row). */
export const EFFECTIVE_SEAT_STATUS = `CASE WHEN s.status = 'held' AND s.held_until <= now() THEN 'free' ELSE s.status END`;

interface SeatMapQueryRow {
  currency: string;
  orphan_policy: OrphanPolicy;
  sections: SectionSpec[];
  /** Null on the one row of an event without seated sections. */
  label: string | null;
  section: string;
  price_cents: number;
  row_name: string;
}

/**
 * The seats table. Every write is conditional (status, fence) and runs in the caller's transaction,
 * so a writer whose lease was superseded changes nothing.
 */
@Injectable()
export class SeatRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** The new event's seats, all free, in one statement. */
  async insertAll(
    manager: EntityManager,
    eventId: string,
    seats: readonly PlannedSeat[],
  ): Promise<void> {
    await manager.query(
      `INSERT INTO seats (event_id, label, section, position, price_cents, row_name, seat_number)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::text[], $7::int[])`,
      [
        eventId,
        seats.map((s) => s.label),
        seats.map((s) => s.section),
        seats.map((s) => s.position),
        seats.map((s) => s.priceCents),
        seats.map((s) => s.row),
        seats.map((s) => s.number),
      ],
    );
  }

  /** The event's seat labels and prices in position order, with its currency; null if no event. */
  async loadSeatMap(eventId: string): Promise<SeatMap | null> {
    const found = await this.dataSource.query<SeatMapQueryRow[]>(
      `SELECT e.currency, e.orphan_policy, e.sections, s.label, s.section, s.price_cents, s.row_name
       FROM events e LEFT JOIN seats s ON s.event_id = e.id AND s.row_name IS NOT NULL
       WHERE e.id = $1 ORDER BY s.position`,
      [eventId],
    );
    if (found.length === 0) return null;
    const rows = found.filter((row) => row.label !== null) as (SeatMapQueryRow & {
      label: string;
    })[];
    const seats = rows.map((row) => ({
      label: row.label,
      section: row.section,
      priceCents: row.price_cents,
    }));
    // A row's seats are consecutive positions numbered from 1 (see seat-map.builder.ts).
    const specs = found[0].sections;
    const sections = specs.map((section) => section.name);
    const seatRows: SeatMapRow[] = [];
    rows.forEach((row, position) => {
      const last = seatRows[seatRows.length - 1];
      if (last && last.name === row.row_name && last.section === row.section) {
        last.length += 1;
        return;
      }
      seatRows.push({
        section: row.section,
        sectionIndex: sections.indexOf(row.section),
        name: row.row_name,
        first: position,
        length: 1,
      });
    });
    const units: UnitSection[] = specs.filter(isGa).map((section, i) => ({
      name: section.name,
      gaIndex: i + 1,
      capacity: section.capacity,
      priceCents: section.priceCents,
    }));
    return {
      eventId,
      currency: found[0].currency,
      orphanPolicy: found[0].orphan_policy,
      prices: new Map(seats.map((seat) => [seat.label, seat.priceCents])),
      seats,
      rows: seatRows,
      sections,
      units,
    };
  }

  /** A GA section's units free to hold now (a lapsed hold's count). */
  async unitsAvailable(eventId: string, section: string): Promise<number> {
    const [{ available }] = await this.dataSource.query<{ available: number }[]>(
      `SELECT seatlock_units_available($1, $2) AS available`,
      [eventId, section],
    );
    return available;
  }

  /**
   * Each seat's effective status in position order. PostgreSQL sends them as one letter per seat in
   * one short row instead of 1,000 rows to parse and collect, which was most of the seat map
   * endpoint's garbage and of the API's peak memory.
   */
  async listStatuses(eventId: string): Promise<SeatStatus[]> {
    const [{ statuses }] = await this.dataSource.query<{ statuses: string | null }[]>(
      `SELECT seatlock_seat_statuses($1) AS statuses`,
      [eventId],
    );
    return decodeSeatStatuses(statuses);
  }

  /** booked → free for this booking; the fence stays, so older tokens stay refused. */
  async freeBooked(
    manager: EntityManager,
    seats: { eventId: string; labels: string[]; bookingId: string },
  ): Promise<number> {
    const [, count] = await manager.query<[unknown, number]>(
      `UPDATE seats SET status = 'free', booking_id = NULL
       WHERE event_id = $1 AND label = ANY($2) AND booking_id = $3 AND status = 'booked'`,
      [seats.eventId, seats.labels, seats.bookingId],
    );
    return count;
  }
}

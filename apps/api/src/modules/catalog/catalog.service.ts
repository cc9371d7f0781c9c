import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { Page } from '../../common/pagination/page';
import type { PageQueryDto } from '../../common/pagination/page-query.dto';
import { CatalogError } from './catalog.errors';
import type { CreateEventDto } from './dto/create-event.dto';
import type { EventWithSeatsDto } from './dto/event-with-seats.dto';
import type { EventDto } from './dto/event.dto';
import type { SeatDto } from './dto/seat.dto';
import type { SeatStatus } from './seat.entity';
import { buildSeatMap } from './seat-map.builder';
import type { SeatMap } from './seat-map';

export const MAX_SEATS_PER_EVENT = 10_000;
/**
 * Seats kept in the seat-map cache across all events (about 130 bytes each, so about 25 MB): the
 * API runs with a capped heap, and 500 events of 10,000 seats would not fit in it.
 */
const SEAT_MAP_CACHE_MAX_SEATS = 200_000;

interface EventRow {
  id: string;
  name: string;
  venue: string;
  starts_at: Date;
  currency: string;
  sections: EventDto['sections'];
  created_at: Date;
  total: number;
  free: number;
  held: number;
  booked: number;
}

/** A hold whose TTL passed counts as free everywhere it is shown. */
const EFFECTIVE_STATUS = `CASE WHEN s.status = 'held' AND s.held_until <= now() THEN 'free' ELSE s.status END`;

const STATUS_BY_LETTER: Readonly<Record<string, SeatStatus>> = {
  f: 'free',
  h: 'held',
  b: 'booked',
};

const EVENT_WITH_COUNTS = `
  SELECT e.id, e.name, e.venue, e.starts_at, e.currency, e.sections, e.created_at,
         c.total::int, c.free::int, c.held::int, c.booked::int
  FROM events e
  CROSS JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE ${EFFECTIVE_STATUS} = 'free') AS free,
           count(*) FILTER (WHERE ${EFFECTIVE_STATUS} = 'held') AS held,
           count(*) FILTER (WHERE s.status = 'booked') AS booked
    FROM seats s WHERE s.event_id = e.id
  ) c`;

function toEventDto(row: EventRow): EventDto {
  return {
    id: row.id,
    name: row.name,
    venue: row.venue,
    startsAt: row.starts_at.toISOString(),
    currency: row.currency,
    sections: row.sections,
    seatCounts: { total: row.total, free: row.free, held: row.held, booked: row.booked },
    createdAt: row.created_at.toISOString(),
  };
}

/**
 * The catalog module's facade: events and seat maps, and the only code that writes `seats`. Every
 * seat write is conditional (status, fence) and runs in the caller's transaction.
 */
@Injectable()
export class CatalogService {
  /** Loaded (or loading) seat maps: concurrent first requests for an event share one query. */
  private readonly seatMaps = new Map<string, Promise<SeatMap>>();
  private cachedSeats = 0;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async createEvent(input: CreateEventDto): Promise<EventWithSeatsDto> {
    const names = input.sections.map((s) => s.name);
    const repeated = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
    if (repeated.length > 0) throw CatalogError.duplicateSections(repeated);
    const seatCount = input.sections.reduce((sum, s) => sum + s.rows * s.seatsPerRow, 0);
    if (seatCount > MAX_SEATS_PER_EVENT)
      throw CatalogError.tooManySeats(seatCount, MAX_SEATS_PER_EVENT);

    const id = randomUUID();
    const sections = input.sections.map(({ name, rows, seatsPerRow, priceCents }) => ({
      name,
      rows,
      seatsPerRow,
      priceCents,
    }));
    const seats = buildSeatMap(sections);
    await this.dataSource.transaction(async (manager) => {
      await manager.query(
        `INSERT INTO events (id, name, venue, starts_at, currency, sections, seat_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          id,
          input.name,
          input.venue,
          input.startsAt,
          input.currency,
          JSON.stringify(sections),
          seatCount,
        ],
      );
      await manager.query(
        `INSERT INTO seats (event_id, label, section, position, price_cents)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::int[])`,
        [
          id,
          seats.map((s) => s.label),
          seats.map((s) => s.section),
          seats.map((s) => s.position),
          seats.map((s) => s.priceCents),
        ],
      );
    });
    const event = await this.getEvent(id);
    return {
      ...event,
      seats: seats.map((s) => ({
        label: s.label,
        section: s.section,
        priceCents: s.priceCents,
        currency: input.currency,
        status: 'free' as const,
      })),
    };
  }

  async listEvents(page: PageQueryDto): Promise<Page<EventDto>> {
    const [rows, [{ total }]] = await Promise.all([
      this.dataSource.query<EventRow[]>(
        `${EVENT_WITH_COUNTS} ORDER BY e.starts_at, e.id LIMIT $1 OFFSET $2`,
        [page.limit, page.offset],
      ),
      this.dataSource.query<{ total: number }[]>(`SELECT count(*)::int AS total FROM events`),
    ]);
    return { items: rows.map(toEventDto), total };
  }

  async getEvent(eventId: string): Promise<EventDto> {
    const rows = await this.dataSource.query<EventRow[]>(`${EVENT_WITH_COUNTS} WHERE e.id = $1`, [
      eventId,
    ]);
    if (rows.length === 0) throw CatalogError.eventNotFound(eventId);
    return toEventDto(rows[0]);
  }

  async listSeats(eventId: string): Promise<SeatDto[]> {
    const seatMap = await this.getSeatMap(eventId);
    // Labels, sections and prices come from the cached map; PostgreSQL sends only each seat's
    // status as one letter in position order: one short row instead of 1,000 rows to parse and
    // collect, which was most of this endpoint's garbage and of the API's peak memory.
    const [{ statuses }] = await this.dataSource.query<{ statuses: string | null }[]>(
      `SELECT string_agg(left(${EFFECTIVE_STATUS}, 1), '' ORDER BY s.position) AS statuses
       FROM seats s WHERE s.event_id = $1`,
      [seatMap.eventId],
    );
    if (statuses?.length !== seatMap.seats.length) {
      throw new Error(`event ${seatMap.eventId}: the cached seat map no longer matches its seats`);
    }
    return seatMap.seats.map((seat, index) => ({
      label: seat.label,
      section: seat.section,
      priceCents: seat.priceCents,
      currency: seatMap.currency,
      status: STATUS_BY_LETTER[statuses[index]],
    }));
  }

  /** The event's seat labels and prices; cached, since a seat map never changes once created. */
  async getSeatMap(requestedId: string): Promise<SeatMap> {
    // One spelling per event: lock keys built from it must match whatever case the client sent.
    const eventId = requestedId.toLowerCase();
    let seatMap = this.seatMaps.get(eventId);
    if (!seatMap) {
      if (this.cachedSeats >= SEAT_MAP_CACHE_MAX_SEATS) {
        this.seatMaps.clear();
        this.cachedSeats = 0;
      }
      seatMap = this.loadSeatMap(eventId);
      this.seatMaps.set(eventId, seatMap);
      seatMap.then(
        (loaded) => (this.cachedSeats += loaded.seats.length),
        // A failed load (unknown event, database down) is not remembered.
        () => this.seatMaps.delete(eventId),
      );
    }
    return seatMap;
  }

  private async loadSeatMap(eventId: string): Promise<SeatMap> {
    const rows = await this.dataSource.query<
      { currency: string; label: string; section: string; price_cents: number }[]
    >(
      `SELECT e.currency, s.label, s.section, s.price_cents
       FROM events e JOIN seats s ON s.event_id = e.id WHERE e.id = $1 ORDER BY s.position`,
      [eventId],
    );
    if (rows.length === 0) throw CatalogError.eventNotFound(eventId);
    const seats = rows.map((row) => ({
      label: row.label,
      section: row.section,
      priceCents: row.price_cents,
    }));
    return {
      eventId,
      currency: rows[0].currency,
      prices: new Map(seats.map((seat) => [seat.label, seat.priceCents])),
      seats,
    };
  }

  /**
   * Frees seats still held under this fence. A writer whose lease was superseded (its seat expired
   * and was held again with a larger token) matches nothing: the answer is how many rows it freed.
   */
  async releaseSeats(
    manager: EntityManager,
    seats: { eventId: string; labels: string[]; fence: string },
  ): Promise<number> {
    const [, count] = await manager.query<[unknown[], number]>(
      `UPDATE seats SET status = 'free', booking_id = NULL, held_until = NULL
       WHERE event_id = $1 AND label = ANY($2) AND status = 'held' AND fence = $3`,
      [seats.eventId, seats.labels, seats.fence],
    );
    return count;
  }

  /**
   * held → booked for a paid booking: only seats still held by this booking under this fence. The
   * caller compares the count with the booking's seats and rolls back on any difference.
   */
  async bookSeats(
    manager: EntityManager,
    seats: { eventId: string; labels: string[]; bookingId: string; fence: string },
  ): Promise<number> {
    const [, count] = await manager.query<[unknown, number]>(
      `UPDATE seats SET status = 'booked', held_until = NULL
       WHERE event_id = $1 AND label = ANY($2) AND booking_id = $3 AND status = 'held' AND fence = $4`,
      [seats.eventId, seats.labels, seats.bookingId, seats.fence],
    );
    return count;
  }

  /** booked → free for a cancelled booking; the fence stays, so older tokens stay refused. */
  async freeBookedSeats(
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

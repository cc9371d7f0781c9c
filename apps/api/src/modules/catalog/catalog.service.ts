import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { inTransaction } from '../../database/in-transaction';
import type { Page } from '../../common/pagination/page';
import type { PageQueryDto } from '../../common/pagination/page-query.dto';
import { CatalogError } from './catalog.errors';
import type { CreateEventDto } from './dto/create-event.dto';
import type { EventWithSeatsDto } from './dto/event-with-seats.dto';
import type { EventDto } from './dto/event.dto';
import type { SeatDto } from './dto/seat.dto';
import { capacityOf, isGa, type SectionSpec } from './event-sections';
import { EventRepository } from './event.repository';
import { buildSeatMap } from './seat-map.builder';
import type { SeatMap, SeatStatus } from './seat-map';
import { SeatRepository } from './seat.repository';

export const MAX_SEATS_PER_EVENT = 10_000;
/** Seats and general-admission units together. */
export const MAX_UNITS_PER_EVENT = 100_000;
/**
 * Seats kept in the seat-map cache across all events (about 130 bytes each, so about 25 MB): the
 * API runs with a capped heap, and 500 events of 10,000 seats would not fit in it.
 */
const SEAT_MAP_CACHE_MAX_SEATS = 200_000;

/**
 * The catalog module's facade: events and seat maps, and the only code that writes `seats`. Every
 * seat write is conditional (status, fence) and runs in the caller's transaction.
 */
@Injectable()
export class CatalogService {
  /** Loaded (or loading) seat maps: concurrent first requests for an event share one query. */
  private readonly seatMaps = new Map<string, Promise<SeatMap>>();
  private cachedSeats = 0;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly events: EventRepository,
    private readonly seats: SeatRepository,
  ) {}

  async createEvent(input: CreateEventDto): Promise<EventWithSeatsDto> {
    const names = input.sections.map((s) => s.name);
    const repeated = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
    if (repeated.length > 0) throw CatalogError.duplicateSections(repeated);
    // The DTO admits exactly one shape per section: capacity, or rows and seatsPerRow.
    const sections: SectionSpec[] = input.sections.map(
      ({ name, rows, seatsPerRow, capacity, priceCents }) =>
        capacity !== undefined
          ? { name, kind: 'ga', capacity, priceCents }
          : { name, rows: rows ?? 0, seatsPerRow: seatsPerRow ?? 0, priceCents },
    );
    const seated = sections.reduce((sum, s) => sum + (isGa(s) ? 0 : capacityOf(s)), 0);
    if (seated > MAX_SEATS_PER_EVENT) throw CatalogError.tooManySeats(seated, MAX_SEATS_PER_EVENT);
    const seatCount = sections.reduce((sum, s) => sum + capacityOf(s), 0);
    if (seatCount > MAX_UNITS_PER_EVENT) {
      throw CatalogError.tooManySeats(seatCount, MAX_UNITS_PER_EVENT);
    }

    const id = randomUUID();
    const seats = buildSeatMap(sections);
    // The event and its seats, or nothing: no event is ever seen without its seat map.
    await inTransaction(this.dataSource, async (manager) => {
      await this.events.insert(manager, {
        id,
        name: input.name,
        venue: input.venue,
        startsAt: input.startsAt,
        currency: input.currency,
        sections,
        seatCount,
        orphanPolicy: input.orphanPolicy ?? 'off',
      });
      await this.seats.insertAll(manager, id, seats);
    });
    const event = await this.getEvent(id);
    return {
      ...event,
      seats: seats
        .filter((s) => s.row !== null)
        .map((s) => ({
          label: s.label,
          section: s.section,
          priceCents: s.priceCents,
          currency: input.currency,
          status: 'free' as const,
        })),
    };
  }

  listEvents(page: PageQueryDto): Promise<Page<EventDto>> {
    return this.events.list(page.limit, page.offset);
  }

  async getEvent(eventId: string): Promise<EventDto> {
    const event = await this.events.find(eventId);
    if (!event) throw CatalogError.eventNotFound(eventId);
    return event;
  }

  async listSeats(eventId: string): Promise<SeatDto[]> {
    // Labels, sections and prices come from the cached map; PostgreSQL sends only the statuses.
    const seatMap = await this.getSeatMap(eventId);
    const statuses = await this.seats.listStatuses(seatMap.eventId);
    if (statuses.length !== seatMap.seats.length) {
      throw new Error(`event ${seatMap.eventId}: the cached seat map no longer matches its seats`);
    }
    return seatMap.seats.map((seat, index) => ({
      label: seat.label,
      section: seat.section,
      priceCents: seat.priceCents,
      currency: seatMap.currency,
      status: statuses[index],
    }));
  }

  /** A GA section's units free to hold now: one statement, for seeding Redis's admission count. */
  unitsAvailable(seatMap: SeatMap, section: string): Promise<number> {
    return this.seats.unitsAvailable(seatMap.eventId, section);
  }

  /** Each seated seat's effective status, in seat-map position order: one short statement. */
  seatStatuses(seatMap: SeatMap): Promise<SeatStatus[]> {
    return this.seats.listStatuses(seatMap.eventId);
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
    const seatMap = await this.seats.loadSeatMap(eventId);
    if (!seatMap) throw CatalogError.eventNotFound(eventId);
    return seatMap;
  }

  /** booked → free for a cancelled booking; the fence stays, so older tokens stay refused. */
  freeBookedSeats(
    manager: EntityManager,
    seats: { eventId: string; labels: string[]; bookingId: string },
  ): Promise<number> {
    return this.seats.freeBooked(manager, seats);
  }
}

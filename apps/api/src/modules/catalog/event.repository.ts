import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { Page } from '../../common/pagination/page';
import type { EventDto } from './dto/event.dto';
import { capacityOf, isGa, type SectionSpec } from './event-sections';
import type { OrphanPolicy } from './seat-map';
import { EFFECTIVE_SEAT_STATUS } from './seat.repository';

/** A new events row; its seats are written beside it in the same transaction. */
export interface NewEvent {
  id: string;
  name: string;
  venue: string;
  startsAt: string;
  currency: string;
  sections: SectionSpec[];
  seatCount: number;
  orphanPolicy: OrphanPolicy;
}

interface EventRow {
  id: string;
  name: string;
  venue: string;
  starts_at: Date;
  currency: string;
  sections: SectionSpec[];
  orphan_policy: OrphanPolicy;
  created_at: Date;
  /** Free seats or units per section name. */
  section_free: Record<string, number> | null;
  total: number;
  free: number;
  held: number;
  booked: number;
}

/** Every event as shown: its columns and its seats counted by effective status. */
const EVENT_WITH_COUNTS = `
  SELECT e.id, e.name, e.venue, e.starts_at, e.currency, e.sections, e.orphan_policy, e.created_at,
         c.total::int, c.free::int, c.held::int, c.booked::int, a.section_free
  FROM events e
  CROSS JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE ${EFFECTIVE_SEAT_STATUS} = 'free') AS free,
           count(*) FILTER (WHERE ${EFFECTIVE_SEAT_STATUS} = 'held') AS held,
           count(*) FILTER (WHERE s.status = 'booked') AS booked
    FROM seats s WHERE s.event_id = e.id
  ) c
  CROSS JOIN LATERAL (
    SELECT jsonb_object_agg(f.section, f.free) AS section_free FROM (
      SELECT s.section, count(*) FILTER (WHERE ${EFFECTIVE_SEAT_STATUS} = 'free') AS free
      FROM seats s WHERE s.event_id = e.id GROUP BY s.section) f
  ) a`;

function toDto(row: EventRow): EventDto {
  return {
    id: row.id,
    name: row.name,
    venue: row.venue,
    startsAt: row.starts_at.toISOString(),
    currency: row.currency,
    sections: row.sections.map((section) => ({
      ...section,
      kind: isGa(section) ? 'ga' : 'seated',
      capacity: capacityOf(section),
      available: row.section_free?.[section.name] ?? 0,
    })),
    orphanPolicy: row.orphan_policy,
    seatCounts: { total: row.total, free: row.free, held: row.held, booked: row.booked },
    createdAt: row.created_at.toISOString(),
  };
}

/** The events table: created once with their seats, then only read. */
@Injectable()
export class EventRepository {
  constructor(private readonly dataSource: DataSource) {}

  async insert(manager: EntityManager, event: NewEvent): Promise<void> {
    await manager.query(
      `INSERT INTO events (id, name, venue, starts_at, currency, sections, seat_count,
                           orphan_policy)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        event.id,
        event.name,
        event.venue,
        event.startsAt,
        event.currency,
        JSON.stringify(event.sections),
        event.seatCount,
        event.orphanPolicy,
      ],
    );
  }

  /** Events by start time, with their seat counts. */
  async list(limit: number, offset: number): Promise<Page<EventDto>> {
    const [rows, [{ total }]] = await Promise.all([
      this.dataSource.query<EventRow[]>(
        `${EVENT_WITH_COUNTS} ORDER BY e.starts_at, e.id LIMIT $1 OFFSET $2`,
        [limit, offset],
      ),
      this.dataSource.query<{ total: number }[]>(`SELECT count(*)::int AS total FROM events`),
    ]);
    return { items: rows.map(toDto), total };
  }

  async find(id: string): Promise<EventDto | null> {
    const rows = await this.dataSource.query<EventRow[]>(`${EVENT_WITH_COUNTS} WHERE e.id = $1`, [
      id,
    ]);
    return rows.length > 0 ? toDto(rows[0]) : null;
  }
}

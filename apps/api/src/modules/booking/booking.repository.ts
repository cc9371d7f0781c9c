import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { retryingAborted } from '../../database/in-transaction';
import type { BookingDto } from './dto/booking.dto';

export type BookingStatus = 'held' | 'confirmed' | 'released' | 'expired' | 'cancelled';

export interface BookingRow {
  id: string;
  customer_id: string;
  event_id: string;
  status: BookingStatus;
  seat_labels: string[];
  amount_cents: string;
  currency: string;
  expires_at: Date;
  fence: string;
  created_at: Date;
}

/** One row of seatlock_hold(): what the one-statement hold did. */
export interface HoldResult {
  outcome: 'held' | 'unavailable' | 'stale' | 'limit' | 'orphan';
  booking: BookingDto | null;
  /** unavailable: the seats others have; orphan: the seats the hold would strand. */
  taken: string[] | null;
  newest_fence: string | null;
  expired: number;
  /** limit: the seats this customer already has for the event. */
  current_seats: number | null;
}

/** One row of seatlock_hold_units(): what a general-admission hold did. */
export interface UnitHoldResult {
  outcome: 'held' | 'sold_out' | 'limit';
  booking: BookingDto | null;
  /** sold_out: the units free in the section. */
  available: number | null;
  /** limit: the seats this customer already has for the event. */
  current_seats: number | null;
  expired: number;
}

export interface UnitHoldInput {
  bookingId: string;
  customerId: string;
  eventId: string;
  section: string;
  quantity: number;
  priceCents: number;
  currency: string;
  ttlSeconds: number;
  customerLimit: number;
}

/** What the one-statement extension did (see seatlock_extend). */
/** A hold that lapsed and was ended: what it had. */
export interface ExpiredHold {
  eventId: string;
  labels: string[];
}

export interface ExtendResult {
  outcome: 'not_found' | 'extended' | 'not_held' | 'max_extensions' | 'max_lifetime';
  booking: BookingDto | null;
}

export interface ExtendLimits {
  ttlSeconds: number;
  maxLifetimeSeconds: number;
  maxExtensions: number;
}

/** What the one-statement release did (see seatlock_release). */
export interface ReleaseResult {
  outcome: 'not_found' | 'released' | 'expired' | 'unchanged' | 'confirmed';
  booking: BookingDto | null;
}

export interface HoldInput {
  bookingId: string;
  customerId: string;
  eventId: string;
  labels: string[];
  amountCents: number;
  currency: string;
  /** The Redis token; null lets PostgreSQL mint one. */
  fence: bigint | null;
  ttlSeconds: number;
  /** The event's orphan policy is strict. */
  orphanCheck: boolean;
  /** Most seats one customer may have for the event, this hold included. */
  customerLimit: number;
}

const COLUMNS = `id, customer_id, event_id, status, seat_labels, amount_cents, currency,
  expires_at, fence, created_at`;

export function toBookingDto(row: BookingRow): BookingDto {
  return {
    id: row.id,
    status: row.status,
    eventId: row.event_id,
    seats: row.seat_labels,
    amountCents: Number(row.amount_cents),
    currency: row.currency,
    expiresAt: row.expires_at.toISOString(),
    fencingToken: row.fence,
    createdAt: row.created_at.toISOString(),
  };
}

/**
 * The bookings table. Its state changes are one statement each, SQL functions of database/functions/
 * (seatlock_hold, seatlock_release, seatlock_expire_booking, seatlock_extend and the payment's
 * seatlock_payment_confirm), each writing the seats, the booking, its timeline and its outbox row
 * together; deadlocks between overlapping multi-seat changes are retried here.
 */
@Injectable()
export class BookingRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async hold(input: HoldInput): Promise<HoldResult> {
    const [result] = await retryingAborted(() =>
      this.dataSource.query<HoldResult[]>(
        `SELECT outcome, booking, taken, newest_fence, expired, current_seats
         FROM seatlock_hold($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
          input.bookingId,
          input.customerId,
          input.eventId,
          input.labels,
          input.amountCents,
          input.currency,
          input.fence?.toString() ?? null,
          input.ttlSeconds,
          input.orphanCheck,
          input.customerLimit,
        ],
      ),
    );
    return result;
  }

  /** `quantity` units of a GA section, the first free ones nobody else is claiming, or none. */
  async holdUnits(input: UnitHoldInput): Promise<UnitHoldResult> {
    const [result] = await retryingAborted(() =>
      this.dataSource.query<UnitHoldResult[]>(
        `SELECT outcome, booking, available, current_seats, expired
         FROM seatlock_hold_units($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          input.bookingId,
          input.customerId,
          input.eventId,
          input.section,
          input.quantity,
          input.priceCents,
          input.currency,
          input.ttlSeconds,
          input.customerLimit,
        ],
      ),
    );
    return result;
  }

  /** The owner's extension of a live hold, fenced, with its timeline and outbox rows. */
  async extend(bookingId: string, customerId: string, limits: ExtendLimits): Promise<ExtendResult> {
    const [result] = await retryingAborted(() =>
      this.dataSource.query<ExtendResult[]>(
        `SELECT outcome, booking FROM seatlock_extend($1, $2, $3, $4, $5)`,
        [bookingId, customerId, limits.ttlSeconds, limits.maxLifetimeSeconds, limits.maxExtensions],
      ),
    );
    return result;
  }

  async release(bookingId: string, customerId: string): Promise<ReleaseResult> {
    const [result] = await retryingAborted(() =>
      this.dataSource.query<ReleaseResult[]>(
        `SELECT outcome, booking FROM seatlock_release($1, $2)`,
        [bookingId, customerId],
      ),
    );
    return result;
  }

  /** Expires one lapsed hold: its event and seats, or null when it was not one (any more). */
  async expire(bookingId: string): Promise<ExpiredHold | null> {
    const [row] = await retryingAborted(() =>
      this.dataSource.query<{ event_id: string | null; seat_labels: string[] | null }[]>(
        `SELECT event_id, seat_labels FROM seatlock_expire_booking($1)`,
        [bookingId],
      ),
    );
    return row?.event_id ? { eventId: row.event_id, labels: row.seat_labels ?? [] } : null;
  }

  /** When the next live hold lapses (epoch ms), null when none is held (bookings_held_expiry_idx). */
  async nextLapse(): Promise<number | null> {
    const [row] = await this.dataSource.query<{ at: Date | null }[]>(
      `SELECT min(expires_at) AS at FROM bookings WHERE status = 'held'`,
    );
    return row?.at ? row.at.getTime() : null;
  }

  /** Holds past their TTL, oldest first. */
  async lapsed(limit: number): Promise<string[]> {
    const rows = await this.dataSource.query<{ id: string }[]>(
      `SELECT id FROM bookings WHERE status = 'held' AND expires_at <= now()
       ORDER BY expires_at LIMIT $1`,
      [limit],
    );
    return rows.map((row) => row.id);
  }

  async listByCustomer(customerId: string, limit: number, offset: number): Promise<BookingRow[]> {
    return this.dataSource.query<BookingRow[]>(
      `SELECT ${COLUMNS} FROM bookings WHERE customer_id = $1
       ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`,
      [customerId, limit, offset],
    );
  }

  async countByCustomer(customerId: string): Promise<number> {
    const [{ total }] = await this.dataSource.query<{ total: number }[]>(
      `SELECT count(*)::int AS total FROM bookings WHERE customer_id = $1`,
      [customerId],
    );
    return total;
  }

  async find(bookingId: string, customerId?: string): Promise<BookingRow | null> {
    const rows = await this.dataSource.query<BookingRow[]>(
      `SELECT ${COLUMNS} FROM bookings WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2)`,
      [bookingId, customerId ?? null],
    );
    return rows[0] ?? null;
  }

  /**
   * confirmed -> cancelled in the caller's transaction, with its timeline and outbox rows; null when
   * the booking is not this customer's confirmed booking (any more).
   */
  async cancel(
    manager: EntityManager,
    bookingId: string,
    customerId: string,
  ): Promise<BookingRow | null> {
    const [row] = await manager.query<BookingRow[]>(
      `WITH b AS (
         UPDATE bookings SET status = 'cancelled', updated_at = now()
          WHERE id = $1 AND customer_id = $2 AND status = 'confirmed' RETURNING *)
       SELECT ${COLUMNS}, seatlock_record_booking_event(ROW(b.*)::bookings, 'booking.cancelled',
         'Cancelled by the customer; ' || array_to_string(b.seat_labels, ', ')
         || ' free again; the payment is refunded') AS recorded
       FROM b`,
      [bookingId, customerId],
    );
    return row ?? null;
  }
}

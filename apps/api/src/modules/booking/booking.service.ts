import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { BulkheadRejectedError, bulkhead, type BulkheadPolicy } from 'cockatiel';
import { DataSource, type EntityManager } from 'typeorm';
import { type Lease, LockBusyError, LockProvider, LockUnavailableError } from '@app/lock';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import type { Page } from '../../common/pagination/page';
import type { PageQueryDto } from '../../common/pagination/page-query.dto';
import { AppConfigService } from '../../config/app-config.service';
import { inTransaction, retryingAborted } from '../../database/in-transaction';
import { CatalogService } from '../catalog/catalog.service';
import type { SeatMap } from '../catalog/seat-map';
import { NotificationService } from '../notification/notification.service';
import type { BookingStatus } from './booking.entity';
import { BookingError } from './booking.errors';
import { BookingMetrics } from './booking.metrics';
import type { BookingDto } from './dto/booking.dto';
import type { CreateBookingDto } from './dto/create-booking.dto';
import type { TimelineEntryDto } from './dto/timeline-entry.dto';

interface BookingRow {
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
interface HoldResult {
  outcome: 'held' | 'unavailable' | 'stale';
  booking: unknown;
  taken: string[] | null;
  newest_fence: string | null;
  expired: number;
}

/** What the payment module needs of a booking it is about to charge or settle. */
export interface PayableBooking {
  id: string;
  customerId: string;
  status: BookingStatus;
  amountCents: number;
  currency: string;
  /** The hold's fencing token: a payment confirms the seats only while they still carry it. */
  fence: string;
  expiresAt: Date;
  dto: BookingDto;
}

/**
 * Lets a module downstream react to a cancellation without booking importing it: `inTransaction`
 * runs in the cancelling transaction (so what it records commits with the cancellation), and
 * `afterCommit` once it committed (for calls outside the database).
 */
export interface CancellationHandler {
  inTransaction(manager: EntityManager, bookingId: string): Promise<void>;
  afterCommit(bookingId: string): Promise<void>;
}

/** Past this many, pending releases are dropped: the keys still expire with their TTL. */
const MAX_UNRELEASED = 10_000;

const BOOKING_COLUMNS = `id, customer_id, event_id, status, seat_labels, amount_cents, currency,
  expires_at, fence, created_at`;

/** PostgreSQL holds a newer fence than the token Redis minted (Redis lost its counters). */
class StaleTokenError extends Error {
  constructor(readonly newestFence: bigint) {
    super(`fencing token is older than the stored fence ${newestFence}`);
  }
}

function toPayable(row: BookingRow): PayableBooking {
  return {
    id: row.id,
    customerId: row.customer_id,
    status: row.status,
    amountCents: Number(row.amount_cents),
    currency: row.currency,
    fence: row.fence,
    expiresAt: row.expires_at,
    dto: toDto(row),
  };
}

function toDto(row: BookingRow): BookingDto {
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

/** Lock keys of one event share a hash tag, so all-or-nothing works on Redis Cluster too. */
export function seatLockKey(eventId: string, label: string): string {
  return `seat:{event:${eventId}}:${label}`;
}

/**
 * The booking module's facade: holds, releases, expiry and the timeline. Redis (through the lock
 * provider) turns most contenders away early; every state change is a conditional write in
 * PostgreSQL, which alone decides who holds a seat.
 */
@Injectable()
export class BookingService {
  private readonly logger = new Logger(BookingService.name);
  private readonly fallback: BulkheadPolicy;
  /** Seat locks whose release Redis did not take; retried by the sweeper so they do not block free seats. */
  private readonly unreleased = new Map<string, readonly string[]>();
  private readonly cancellationHandlers: CancellationHandler[] = [];

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly catalog: CatalogService,
    private readonly notifications: NotificationService,
    private readonly lock: LockProvider,
    private readonly config: AppConfigService,
    private readonly metrics: BookingMetrics,
  ) {
    this.fallback = bulkhead(config.get('FALLBACK_CONCURRENCY'), config.get('FALLBACK_QUEUE'));
  }

  async hold(customer: AuthenticatedCustomer, input: CreateBookingDto): Promise<BookingDto> {
    const seatMap = await this.catalog.getSeatMap(input.eventId);
    const labels = this.validateSeats(seatMap, input.seatIds);
    const bookingId = randomUUID();
    const ttlSeconds = this.config.get('HOLD_TTL_SECONDS');
    const keys = labels.map((label) => seatLockKey(seatMap.eventId, label));

    let lease: Lease | null = null;
    if (this.lock.mode !== 'off') {
      try {
        lease = await this.lock.acquireMany(keys, ttlSeconds * 1000, bookingId);
      } catch (error) {
        if (error instanceof LockBusyError) {
          this.metrics.holds.inc({ outcome: 'conflict_redis' });
          throw BookingError.seatsUnavailable(
            labels.filter((_, i) => error.busyKeys.includes(keys[i])),
          );
        }
        if (!(error instanceof LockUnavailableError)) throw error;
        this.metrics.fallbacks.inc({ reason: `redis_${error.reason}` });
        // A timed-out script may still run once Redis wakes; its keys must not outlive this request.
        if (error.reason === 'timeout') this.unreleased.set(bookingId, keys);
      }
    }

    const write = (fence: bigint | null): Promise<BookingDto> =>
      this.writeHold(customer, seatMap, labels, bookingId, fence, ttlSeconds);
    try {
      let booking: BookingDto;
      if (lease) {
        booking = await this.writeWithLease(write, keys, lease);
      } else if (this.lock.mode === 'off') {
        booking = await write(null);
      } else {
        booking = await this.fallback.execute(() => write(null));
      }
      this.metrics.holds.inc({ outcome: 'held' });
      return booking;
    } catch (error) {
      if (lease) await this.releaseLease(lease.keys, bookingId);
      if (error instanceof BulkheadRejectedError) throw BookingError.overloaded();
      if (error instanceof BookingError && error.status === 409) {
        this.metrics.holds.inc({ outcome: 'conflict_database' });
      }
      throw error;
    }
  }

  async list(customer: AuthenticatedCustomer, page: PageQueryDto): Promise<Page<BookingDto>> {
    const [rows, [{ total }]] = await Promise.all([
      this.dataSource.query<BookingRow[]>(
        `SELECT ${BOOKING_COLUMNS} FROM bookings WHERE customer_id = $1
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`,
        [customer.id, page.limit, page.offset],
      ),
      this.dataSource.query<{ total: number }[]>(
        `SELECT count(*)::int AS total FROM bookings WHERE customer_id = $1`,
        [customer.id],
      ),
    ]);
    return { items: rows.map(toDto), total };
  }

  async get(customer: AuthenticatedCustomer, bookingId: string): Promise<BookingDto> {
    return toDto(await this.findOwned(this.dataSource.manager, customer, bookingId));
  }

  async timeline(customer: AuthenticatedCustomer, bookingId: string): Promise<TimelineEntryDto[]> {
    await this.findOwned(this.dataSource.manager, customer, bookingId);
    const rows = await this.dataSource.query<{ type: string; at: Date; detail: string }[]>(
      `SELECT type, at, detail FROM booking_timeline WHERE booking_id = $1 ORDER BY id`,
      [bookingId],
    );
    return rows.map((row) => ({ type: row.type, at: row.at.toISOString(), detail: row.detail }));
  }

  /**
   * held → released (seats free again); a hold already past its TTL turns expired instead.
   * confirmed → cancelled (seats free again; the payment module refunds through its handler). On a
   * booking already released, expired or cancelled nothing changes and the same answer comes back.
   */
  async release(customer: AuthenticatedCustomer, bookingId: string): Promise<BookingDto> {
    const { row, changed } = await inTransaction(this.dataSource, async (manager) => {
      const booking = await this.findOwned(manager, customer, bookingId, true);
      if (booking.status === 'confirmed')
        return { row: await this.cancel(manager, booking), changed: true };
      if (booking.status !== 'held') return { row: booking, changed: false };
      const expired = await this.expireBooking(manager, bookingId, 'release');
      if (expired) return { row: expired, changed: true };
      const [[released]] = await manager.query<[BookingRow[], number]>(
        `UPDATE bookings SET status = 'released', updated_at = now()
         WHERE id = $1 AND status = 'held' RETURNING ${BOOKING_COLUMNS}`,
        [bookingId],
      );
      await this.catalog.releaseSeats(manager, {
        eventId: released.event_id,
        labels: released.seat_labels,
        fence: released.fence,
      });
      await this.record(
        manager,
        released,
        'booking.released',
        `Released by the customer; ${released.seat_labels.join(', ')} free again`,
      );
      return { row: released, changed: true };
    });
    if (changed && row.status === 'cancelled') {
      for (const handler of this.cancellationHandlers) {
        await handler.afterCommit(row.id).catch((error: unknown) => {
          this.logger.error(
            { err: error, bookingId: row.id },
            'Cancellation follow-up failed; the reconciler retries it',
          );
        });
      }
    }
    // Only the call that ended the hold frees its Redis keys; a repeated DELETE costs no round trip.
    if (changed) {
      await this.releaseLease(
        row.seat_labels.map((label) => seatLockKey(row.event_id, label)),
        row.id,
      );
    }
    return toDto(row);
  }

  /** Expires holds past their TTL, oldest first; stops early when `signal` fires. */
  async expireDueHolds(signal?: AbortSignal, batchSize = 200): Promise<number> {
    const due = await this.dataSource.query<{ id: string }[]>(
      `SELECT id FROM bookings WHERE status = 'held' AND expires_at <= now()
       ORDER BY expires_at LIMIT $1`,
      [batchSize],
    );
    let expired = 0;
    for (const { id } of due) {
      if (signal?.aborted) break;
      const row = await inTransaction(this.dataSource, (manager) =>
        this.expireBooking(manager, id, 'sweeper'),
      );
      if (row) expired += 1;
    }
    return expired;
  }

  /** Registers what must happen when a confirmed booking is cancelled (the payment's refund). */
  onCancellation(handler: CancellationHandler): void {
    this.cancellationHandlers.push(handler);
  }

  /** The customer's booking if it can be paid now: held and within its TTL; else 409 naming why. */
  async getPayable(customer: AuthenticatedCustomer, bookingId: string): Promise<PayableBooking> {
    const row = await this.findOwned(this.dataSource.manager, customer, bookingId);
    if (row.status !== 'held') throw BookingError.notPayable(row.status);
    if (row.expires_at.getTime() <= Date.now()) throw BookingError.notPayable('expired');
    return toPayable(row);
  }

  /** Any customer's booking, for work that is not a customer's request (webhooks, reconciliation). */
  async find(bookingId: string): Promise<PayableBooking | null> {
    const rows = await this.dataSource.query<BookingRow[]>(
      `SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = $1`,
      [bookingId],
    );
    return rows[0] ? toPayable(rows[0]) : null;
  }

  /** Checks ownership the way every owner-only route does: another customer's booking is 404. */
  async assertOwned(customer: AuthenticatedCustomer, bookingId: string): Promise<void> {
    await this.findOwned(this.dataSource.manager, customer, bookingId);
  }

  /**
   * held → confirmed for a paid booking, in the caller's transaction: only while the booking is held,
   * within its TTL and still under `fence`, and only if every seat is still held by it under that
   * fence. Otherwise nothing is booked; a hold past its TTL is expired here, so the answer names
   * what the booking has become.
   */
  async confirmPaid(
    manager: EntityManager,
    bookingId: string,
    fence: string,
    paymentId: string,
  ): Promise<{ confirmed: boolean; booking: PayableBooking }> {
    const [[row]] = await manager.query<[BookingRow[], number]>(
      `UPDATE bookings SET status = 'confirmed', updated_at = now()
       WHERE id = $1 AND status = 'held' AND fence = $2 AND expires_at > now()
       RETURNING ${BOOKING_COLUMNS}`,
      [bookingId, fence],
    );
    if (!row) {
      const expired = await this.expireBooking(manager, bookingId, 'payment');
      const [current] = expired
        ? [expired]
        : await manager.query<BookingRow[]>(
            `SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = $1`,
            [bookingId],
          );
      return { confirmed: false, booking: toPayable(current) };
    }
    const booked = await this.catalog.bookSeats(manager, {
      eventId: row.event_id,
      labels: row.seat_labels,
      bookingId,
      fence,
    });
    if (booked !== row.seat_labels.length) {
      // A held booking whose seats are not all held by it: refuse rather than book part of it.
      throw new Error(
        `booking ${bookingId} is held but only ${booked} of ${row.seat_labels.length} seats carry its fence`,
      );
    }
    await this.record(
      manager,
      row,
      'booking.confirmed',
      `Paid (payment ${paymentId}); ${row.seat_labels.join(', ')} booked`,
    );
    return { confirmed: true, booking: toPayable(row) };
  }

  /**
   * Appends a payment fact (declined, voided, refunded) to the booking's timeline and the outbox, in
   * the caller's transaction, so the customer hears about it exactly when it committed.
   */
  async recordPaymentEvent(
    manager: EntityManager,
    bookingId: string,
    type: string,
    detail: string,
    payment: Record<string, unknown>,
  ): Promise<void> {
    const [row] = await manager.query<BookingRow[]>(
      `SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = $1`,
      [bookingId],
    );
    await manager.query(
      `INSERT INTO booking_timeline (booking_id, type, detail) VALUES ($1, $2, $3)`,
      [bookingId, type, detail],
    );
    await this.notifications.enqueue(manager, {
      topic: type,
      customerId: row.customer_id,
      aggregateId: bookingId,
      payload: { booking: toDto(row), payment },
    });
  }

  /** confirmed → cancelled in the caller's transaction; seats free again; handlers record refunds. */
  private async cancel(manager: EntityManager, booking: BookingRow): Promise<BookingRow> {
    const [[row]] = await manager.query<[BookingRow[], number]>(
      `UPDATE bookings SET status = 'cancelled', updated_at = now()
       WHERE id = $1 AND status = 'confirmed' RETURNING ${BOOKING_COLUMNS}`,
      [booking.id],
    );
    await this.catalog.freeBookedSeats(manager, {
      eventId: row.event_id,
      labels: row.seat_labels,
      bookingId: row.id,
    });
    await this.record(
      manager,
      row,
      'booking.cancelled',
      `Cancelled by the customer; ${row.seat_labels.join(', ')} free again; the payment is refunded`,
    );
    for (const handler of this.cancellationHandlers) {
      await handler.inTransaction(manager, row.id);
    }
    return row;
  }

  private validateSeats(seatMap: SeatMap, seatIds: string[]): string[] {
    const duplicates = [...new Set(seatIds.filter((label, i) => seatIds.indexOf(label) !== i))];
    if (duplicates.length > 0) throw BookingError.duplicateSeats(duplicates);
    const max = this.config.get('MAX_SEATS_PER_BOOKING');
    if (seatIds.length > max) throw BookingError.tooManySeats(seatIds.length, max);
    const unknown = seatIds.filter((label) => !seatMap.prices.has(label));
    if (unknown.length > 0) throw BookingError.unknownSeats(unknown);
    return seatIds;
  }

  /**
   * Writes the hold with the Redis token. If PostgreSQL already holds a newer fence (Redis lost its
   * counters and seeded from a clock behind PostgreSQL's), raise Redis's counters and let
   * PostgreSQL mint the token this once.
   */
  private async writeWithLease(
    write: (fence: bigint | null) => Promise<BookingDto>,
    keys: string[],
    lease: Lease,
  ): Promise<BookingDto> {
    try {
      return await write(lease.fence);
    } catch (error) {
      if (!(error instanceof StaleTokenError)) throw error;
      this.metrics.staleFences.inc();
      this.logger.warn(
        { fence: lease.fence.toString(), stored: error.newestFence.toString() },
        'PostgreSQL refused a stale fencing token; it mints this one and Redis is ratcheted to it',
      );
      const booking = await write(null);
      // Up to the token PostgreSQL just stored, so the next Redis token beats it.
      await this.lock.ratchet(keys, BigInt(booking.fencingToken)).catch(() => undefined);
      return booking;
    }
  }

  /**
   * The hold in one statement (seatlock_hold, see its migration): the requested seats locked, their
   * lapsed holds expired, every seat checked free and older than the token, then seats, booking,
   * timeline and outbox written together — or nothing at all.
   */
  private async writeHold(
    customer: AuthenticatedCustomer,
    seatMap: SeatMap,
    labels: string[],
    bookingId: string,
    fence: bigint | null,
    ttlSeconds: number,
  ): Promise<BookingDto> {
    const amount = labels.reduce((sum, label) => sum + (seatMap.prices.get(label) ?? 0), 0);
    const [result] = await retryingAborted(() =>
      this.dataSource.query<HoldResult[]>(
        `SELECT outcome, booking, taken, newest_fence, expired
         FROM seatlock_hold($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          bookingId,
          customer.id,
          seatMap.eventId,
          labels,
          amount,
          seatMap.currency,
          fence?.toString() ?? null,
          ttlSeconds,
        ],
      ),
    );
    if (result.expired > 0) this.metrics.expired.inc({ by: 'inline' }, result.expired);
    if (result.expired > 0 || result.outcome === 'held') this.notifications.committed();
    if (result.outcome === 'held') return result.booking as BookingDto;
    if (result.outcome === 'stale') throw new StaleTokenError(BigInt(result.newest_fence ?? 0));
    throw BookingError.seatsUnavailable(result.taken ?? labels);
  }

  /** held → expired when the TTL has passed; frees the seats this booking still holds by fence. */
  private async expireBooking(
    manager: EntityManager,
    bookingId: string,
    by: 'sweeper' | 'inline' | 'release' | 'payment',
  ): Promise<BookingRow | null> {
    const [rows] = await manager.query<[BookingRow[], number]>(
      `UPDATE bookings SET status = 'expired', updated_at = now()
       WHERE id = $1 AND status = 'held' AND expires_at <= now() RETURNING ${BOOKING_COLUMNS}`,
      [bookingId],
    );
    const row = rows[0];
    if (!row) return null;
    await this.catalog.releaseSeats(manager, {
      eventId: row.event_id,
      labels: row.seat_labels,
      fence: row.fence,
    });
    await this.record(
      manager,
      row,
      'booking.expired',
      `Hold lapsed at ${row.expires_at.toISOString()}; ${row.seat_labels.join(', ')} free again`,
    );
    this.metrics.expired.inc({ by });
    return row;
  }

  private async findOwned(
    manager: EntityManager,
    customer: AuthenticatedCustomer,
    bookingId: string,
    forUpdate = false,
  ): Promise<BookingRow> {
    const rows = await manager.query<BookingRow[]>(
      `SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = $1 AND customer_id = $2
       ${forUpdate ? 'FOR UPDATE' : ''}`,
      [bookingId, customer.id],
    );
    // Another customer's booking is answered exactly like a missing one.
    if (rows.length === 0) throw BookingError.notFound(bookingId);
    return rows[0];
  }

  /** Appends to the timeline and the outbox, in the transaction of the change. */
  private async record(
    manager: EntityManager,
    row: BookingRow,
    type: string,
    detail: string,
  ): Promise<void> {
    await manager.query(
      `INSERT INTO booking_timeline (booking_id, type, detail) VALUES ($1, $2, $3)`,
      [row.id, type, detail],
    );
    await this.notifications.enqueue(manager, {
      topic: type,
      customerId: row.customer_id,
      aggregateId: row.id,
      payload: { booking: toDto(row) },
    });
  }

  /**
   * Frees this booking's seat locks in Redis. If Redis cannot be reached they would keep answering 409
   * for seats PostgreSQL already freed until their TTL, so they are kept for `retryUnreleasedLocks`.
   */
  private async releaseLease(keys: readonly string[], owner: string): Promise<void> {
    if (this.lock.mode === 'off') return;
    try {
      await this.lock.release({ keys, owner });
      this.unreleased.delete(owner);
    } catch (error) {
      if (this.unreleased.size < MAX_UNRELEASED) this.unreleased.set(owner, keys);
      this.logger.debug({ err: error, bookingId: owner }, 'Seat locks not released; will retry');
    }
  }

  /** Retries releases Redis missed; answers how many are still pending. */
  async retryUnreleasedLocks(): Promise<number> {
    for (const [owner, keys] of [...this.unreleased]) {
      await this.releaseLease(keys, owner);
    }
    return this.unreleased.size;
  }
}

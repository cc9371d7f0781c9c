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
import { inTransaction } from '../../database/in-transaction';
import { CatalogService } from '../catalog/catalog.service';
import type { SeatMap } from '../catalog/seat-map';
import { NotificationService } from '../notification/notification.service';
import { BookingRepository, type BookingRow, toBookingDto } from './booking.repository';
import { BookingTimelineRepository } from './booking-timeline.repository';
import { BookingError } from './booking.errors';
import { BookingMetrics } from './booking.metrics';
import type { BookingDto } from './dto/booking.dto';
import type { CreateBookingDto } from './dto/create-booking.dto';
import type { TimelineEntryDto } from './dto/timeline-entry.dto';

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

/** PostgreSQL holds a newer fence than the token Redis minted (Redis lost its counters). */
class StaleTokenError extends Error {
  constructor(readonly newestFence: bigint) {
    super(`fencing token is older than the stored fence ${newestFence}`);
  }
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
    private readonly bookings: BookingRepository,
    private readonly timelines: BookingTimelineRepository,
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
    const [rows, total] = await Promise.all([
      this.bookings.listByCustomer(customer.id, page.limit, page.offset),
      this.bookings.countByCustomer(customer.id),
    ]);
    return { items: rows.map(toBookingDto), total };
  }

  async get(customer: AuthenticatedCustomer, bookingId: string): Promise<BookingDto> {
    return toBookingDto(await this.findOwned(customer, bookingId));
  }

  async timeline(customer: AuthenticatedCustomer, bookingId: string): Promise<TimelineEntryDto[]> {
    await this.findOwned(customer, bookingId);
    return this.timelines.list(bookingId);
  }

  /**
   * held → released (seats free again) in one statement; a hold already past its TTL turns expired
   * instead. confirmed → cancelled (seats free again; the payment module refunds through its
   * handler). On a booking already released, expired or cancelled nothing changes and the same
   * answer comes back.
   */
  async release(customer: AuthenticatedCustomer, bookingId: string): Promise<BookingDto> {
    const result = await this.bookings.release(bookingId, customer.id);
    let booking = result.booking;
    if (result.outcome === 'not_found' || !booking) throw BookingError.notFound(bookingId);
    if (result.outcome === 'unchanged') return booking;
    if (result.outcome === 'confirmed') {
      const cancelled = await this.cancel(customer, bookingId);
      // Changed meanwhile (cancelled by a concurrent DELETE): answer as a repeated DELETE does.
      if (!cancelled) return this.get(customer, bookingId);
      booking = cancelled;
    } else {
      if (result.outcome === 'expired') this.metrics.expired.inc({ by: 'release' });
      this.notifications.committed();
    }
    // Only the call that ended the hold frees its Redis keys; a repeated DELETE costs no round trip.
    await this.releaseLease(
      booking.seats.map((label) => seatLockKey(booking.eventId, label)),
      booking.id,
    );
    return booking;
  }

  /** Expires holds past their TTL, oldest first, one statement each; stops when `signal` fires. */
  async expireDueHolds(signal?: AbortSignal, batchSize = 200): Promise<number> {
    let expired = 0;
    for (const id of await this.bookings.lapsed(batchSize)) {
      if (signal?.aborted) break;
      if (await this.bookings.expire(id)) expired += 1;
    }
    if (expired > 0) {
      this.metrics.expired.inc({ by: 'sweeper' }, expired);
      this.notifications.committed();
    }
    return expired;
  }

  /** Registers what must happen when a confirmed booking is cancelled (the payment's refund). */
  onCancellation(handler: CancellationHandler): void {
    this.cancellationHandlers.push(handler);
  }

  /** Any customer's booking, for work that is not a customer's request (webhooks, reconciliation). */
  async find(bookingId: string): Promise<BookingDto | null> {
    const row = await this.bookings.find(bookingId);
    return row ? toBookingDto(row) : null;
  }

  /** Checks ownership the way every owner-only route does: another customer's booking is 404. */
  async assertOwned(customer: AuthenticatedCustomer, bookingId: string): Promise<void> {
    await this.findOwned(customer, bookingId);
  }

  /**
   * confirmed → cancelled: seats free again, the timeline and outbox rows, and what the handlers
   * record (the refund owed), in one transaction; then the handlers' follow-up. Null when the
   * booking was no longer confirmed.
   */
  private async cancel(
    customer: AuthenticatedCustomer,
    bookingId: string,
  ): Promise<BookingDto | null> {
    const row = await inTransaction(this.dataSource, async (manager) => {
      const cancelled = await this.bookings.cancel(manager, bookingId, customer.id);
      if (!cancelled) return null;
      await this.catalog.freeBookedSeats(manager, {
        eventId: cancelled.event_id,
        labels: cancelled.seat_labels,
        bookingId,
      });
      for (const handler of this.cancellationHandlers) {
        await handler.inTransaction(manager, bookingId);
      }
      return cancelled;
    });
    if (!row) return null;
    this.notifications.committed();
    for (const handler of this.cancellationHandlers) {
      await handler.afterCommit(bookingId).catch((error: unknown) => {
        this.logger.error(
          { err: error, bookingId },
          'Cancellation follow-up failed; the reconciler retries it',
        );
      });
    }
    return toBookingDto(row);
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
    const result = await this.bookings.hold({
      bookingId,
      customerId: customer.id,
      eventId: seatMap.eventId,
      labels,
      amountCents: labels.reduce((sum, label) => sum + (seatMap.prices.get(label) ?? 0), 0),
      currency: seatMap.currency,
      fence,
      ttlSeconds,
    });
    if (result.expired > 0) this.metrics.expired.inc({ by: 'inline' }, result.expired);
    if (result.expired > 0 || result.outcome === 'held') this.notifications.committed();
    if (result.outcome === 'held' && result.booking) return result.booking;
    if (result.outcome === 'stale') throw new StaleTokenError(BigInt(result.newest_fence ?? 0));
    throw BookingError.seatsUnavailable(result.taken ?? labels);
  }

  private async findOwned(customer: AuthenticatedCustomer, bookingId: string): Promise<BookingRow> {
    // Another customer's booking is answered exactly like a missing one.
    const row = await this.bookings.find(bookingId, customer.id);
    if (!row) throw BookingError.notFound(bookingId);
    return row;
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

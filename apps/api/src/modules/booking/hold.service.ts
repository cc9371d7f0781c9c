import { performance } from 'node:perf_hooks';
import { Injectable, Logger } from '@nestjs/common';
import { BulkheadRejectedError, bulkhead, type BulkheadPolicy } from 'cockatiel';
import { type Lease, LockBusyError, LockProvider, LockUnavailableError } from '@app/lock';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import { AppConfigService } from '../../config/app-config.service';
import type { SeatMap } from '../catalog/seat-map';
import { NotificationService } from '../notification/notification.service';
import { BookingRepository } from './booking.repository';
import { BookingError } from './booking.errors';
import { BookingMetrics } from './booking.metrics';
import type { BookingDto } from './dto/booking.dto';

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

/** What the lock step produced: a lease, or none because Redis could not be asked (or is off). */
export type LockOutcome = { lease: Lease } | { lease: null };

/**
 * Places holds: the seats' Redis locks (which turn most contenders away before PostgreSQL), then the
 * one-statement fenced write that alone decides. Also owns the locks' lifecycle afterwards: release,
 * extension, and the retry of releases Redis missed.
 */
@Injectable()
export class HoldService {
  private readonly logger = new Logger(HoldService.name);
  private readonly fallback: BulkheadPolicy;
  /** Seat locks whose release Redis did not take; retried by the sweeper so they do not block free seats. */
  private readonly unreleased = new Map<string, readonly string[]>();
  private readonly retryListeners: (() => void)[] = [];

  constructor(
    private readonly bookings: BookingRepository,
    private readonly notifications: NotificationService,
    private readonly lock: LockProvider,
    private readonly config: AppConfigService,
    private readonly metrics: BookingMetrics,
  ) {
    this.fallback = bulkhead(config.get('FALLBACK_CONCURRENCY'), config.get('FALLBACK_QUEUE'));
  }

  get lockMode(): LockProvider['mode'] {
    return this.lock.mode;
  }

  /** Locks exactly these seats, then writes the hold; 409 naming the seats Redis saw taken. */
  async hold(
    customer: AuthenticatedCustomer,
    seatMap: SeatMap,
    labels: string[],
    bookingId: string,
  ): Promise<BookingDto> {
    const result = await this.lockSeats(seatMap, labels, bookingId);
    if ('busy' in result) {
      this.metrics.holds.inc({ outcome: 'conflict_redis' });
      throw BookingError.seatsUnavailable(result.busy);
    }
    return this.write(customer, seatMap, labels, bookingId, result.locked);
  }

  /** All of these seats' locks, or the labels Redis saw held by someone else. */
  async lockSeats(
    seatMap: SeatMap,
    labels: string[],
    bookingId: string,
  ): Promise<{ locked: LockOutcome } | { busy: string[] }> {
    if (this.lock.mode === 'off') return { locked: { lease: null } };
    const keys = labels.map((label) => seatLockKey(seatMap.eventId, label));
    try {
      return { locked: { lease: await this.lock.acquireMany(keys, this.ttlMs(), bookingId) } };
    } catch (error) {
      if (error instanceof LockBusyError) {
        return { busy: labels.filter((_, i) => error.busyKeys.includes(keys[i])) };
      }
      this.lockUnavailable(error, bookingId, keys);
      return { locked: { lease: null } };
    }
  }

  /**
   * Writes the hold with the lease's token, or without one (PostgreSQL mints it) when there is no
   * lease: then through the fallback bulkhead, so a Redis outage cannot pile every request onto
   * PostgreSQL at once. Any failure gives the lease back.
   */
  async write(
    customer: AuthenticatedCustomer,
    seatMap: SeatMap,
    labels: string[],
    bookingId: string,
    locked: LockOutcome,
  ): Promise<BookingDto> {
    const write = (fence: bigint | null): Promise<BookingDto> =>
      this.writeHold(customer, seatMap, labels, bookingId, fence);
    const lease = locked.lease;
    try {
      let booking: BookingDto;
      if (lease) booking = await this.writeWithLease(write, lease);
      else booking = await this.withoutRedis(() => write(null));
      this.metrics.holds.inc({ outcome: 'held' });
      return booking;
    } catch (error) {
      if (lease) await this.releaseLease(lease.keys, bookingId);
      if (error instanceof BookingError && error.code === 'BOOKING.SEAT_UNAVAILABLE') {
        this.metrics.holds.inc({ outcome: 'conflict_database' });
      }
      throw error;
    }
  }

  /**
   * Database work that Redis did not filter: direct with LOCK_MODE=off, else behind the fallback
   * bulkhead (full: 503 BOOKING.OVERLOADED), so a Redis outage cannot pile every request onto
   * PostgreSQL at once.
   */
  async withoutRedis<T>(work: () => Promise<T>): Promise<T> {
    if (this.lock.mode === 'off') return work();
    try {
      return await this.fallback.execute(work);
    } catch (error) {
      if (error instanceof BulkheadRejectedError) throw BookingError.overloaded();
      throw error;
    }
  }

  /**
   * Moves the seat locks' expiry to the booking's new `expiresAt`. PostgreSQL already extended the
   * hold, so a lock Redis lost is only logged: contenders then reach PostgreSQL, which refuses them.
   */
  async extendLocks(booking: BookingDto): Promise<void> {
    if (this.lock.mode === 'off') return;
    const ttlMs = Date.parse(booking.expiresAt) - Date.now();
    if (ttlMs <= 0) return;
    try {
      await this.lock.extend(
        {
          keys: booking.seats.map((label) => seatLockKey(booking.eventId, label)),
          owner: booking.id,
          fence: BigInt(booking.fencingToken),
          ttlMs,
          validUntil: performance.now() + ttlMs,
        },
        ttlMs,
      );
    } catch (error) {
      this.logger.warn(
        { err: error, bookingId: booking.id },
        'Seat locks not extended in Redis; PostgreSQL still holds the seats until the new expiry',
      );
    }
  }

  /**
   * Frees this booking's seat locks in Redis. If Redis cannot be reached they would keep answering 409
   * for seats PostgreSQL already freed until their TTL, so they are kept for `retryUnreleasedLocks`.
   */
  async releaseLease(keys: readonly string[], owner: string): Promise<void> {
    if (this.lock.mode === 'off') return;
    try {
      await this.lock.release({ keys, owner });
      this.unreleased.delete(owner);
    } catch (error) {
      this.keepForRetry(owner, keys);
      this.logger.debug({ err: error, bookingId: owner }, 'Seat locks not released; will retry');
    }
  }

  /** Registers who is told when a release Redis missed waits for `retryUnreleasedLocks`. */
  onUnreleased(listener: () => void): void {
    this.retryListeners.push(listener);
  }

  /** Releases Redis missed, waiting for `retryUnreleasedLocks`. */
  get unreleasedCount(): number {
    return this.unreleased.size;
  }

  /** Retries releases Redis missed; answers how many are still pending. */
  async retryUnreleasedLocks(): Promise<number> {
    for (const [owner, keys] of [...this.unreleased]) {
      await this.releaseLease(keys, owner);
    }
    return this.unreleased.size;
  }

  private ttlMs(): number {
    return this.config.get('HOLD_TTL_SECONDS') * 1000;
  }

  /** Redis could not be asked: PostgreSQL decides alone (anything else is a bug and rethrown). */
  private lockUnavailable(error: unknown, bookingId: string, keys: string[]): void {
    if (!(error instanceof LockUnavailableError)) throw error;
    this.metrics.fallbacks.inc({ reason: `redis_${error.reason}` });
    // A timed-out script may still run once Redis wakes; its keys must not outlive this request.
    if (error.reason === 'timeout') this.keepForRetry(bookingId, keys);
  }

  private keepForRetry(owner: string, keys: readonly string[]): void {
    if (this.unreleased.size >= MAX_UNRELEASED) return;
    this.unreleased.set(owner, keys);
    for (const listener of this.retryListeners) listener();
  }

  /**
   * Writes the hold with the Redis token. If PostgreSQL already holds a newer fence (Redis lost its
   * counters and seeded from a clock behind PostgreSQL's), raise Redis's counters and let
   * PostgreSQL mint the token this once.
   */
  private async writeWithLease(
    write: (fence: bigint | null) => Promise<BookingDto>,
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
      await this.lock.ratchet([...lease.keys], BigInt(booking.fencingToken)).catch(() => undefined);
      return booking;
    }
  }

  /**
   * The hold in one statement (seatlock_hold, database/functions/): the requested seats locked,
   * their lapsed holds expired, every seat checked free, the customer's cap and the event's orphan
   * rule checked, the token checked newer than every stored fence, then seats, booking, timeline
   * and outbox written together — or nothing at all.
   */
  private async writeHold(
    customer: AuthenticatedCustomer,
    seatMap: SeatMap,
    labels: string[],
    bookingId: string,
    fence: bigint | null,
  ): Promise<BookingDto> {
    const limit = this.config.get('MAX_SEATS_PER_CUSTOMER_PER_EVENT');
    const result = await this.bookings.hold({
      bookingId,
      customerId: customer.id,
      eventId: seatMap.eventId,
      labels,
      amountCents: labels.reduce((sum, label) => sum + (seatMap.prices.get(label) ?? 0), 0),
      currency: seatMap.currency,
      fence,
      ttlSeconds: this.config.get('HOLD_TTL_SECONDS'),
      orphanCheck: seatMap.orphanPolicy === 'strict',
      customerLimit: limit,
    });
    if (result.expired > 0) this.metrics.expired.inc({ by: 'inline' }, result.expired);
    if (result.expired > 0 || result.outcome === 'held') this.notifications.committed();
    switch (result.outcome) {
      case 'held':
        if (result.booking) return result.booking;
        break;
      case 'stale':
        throw new StaleTokenError(BigInt(result.newest_fence ?? 0));
      case 'limit':
        throw BookingError.customerLimit(limit, result.current_seats ?? 0);
      case 'orphan':
        throw BookingError.orphanSeats(result.taken ?? []);
      case 'unavailable':
        throw BookingError.seatsUnavailable(result.taken ?? labels);
    }
    throw new Error(`seatlock_hold answered ${result.outcome} without a booking`);
  }
}

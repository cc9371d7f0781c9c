import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import type { Page } from '../../common/pagination/page';
import type { PageQueryDto } from '../../common/pagination/page-query.dto';
import { AppConfigService } from '../../config/app-config.service';
import { inTransaction } from '../../database/in-transaction';
import { CatalogService } from '../catalog/catalog.service';
import type { SeatMap } from '../catalog/seat-map';
import { NotificationService } from '../notification/notification.service';
import { BestAvailableService } from './best-available.service';
import { BookingRepository, type BookingRow, toBookingDto } from './booking.repository';
import { BookingTimelineRepository } from './booking-timeline.repository';
import { BookingError } from './booking.errors';
import { BookingMetrics } from './booking.metrics';
import type { BookingDto } from './dto/booking.dto';
import type { CreateBookingDto } from './dto/create-booking.dto';
import type { TimelineEntryDto } from './dto/timeline-entry.dto';
import { GeneralAdmissionService } from './general-admission.service';
import { HoldService, seatLockKey } from './hold.service';

/**
 * Lets a module downstream react to a cancellation without booking importing it: `inTransaction`
 * runs in the cancelling transaction (so what it records commits with the cancellation), and
 * `afterCommit` once it committed (for calls outside the database).
 */
export interface CancellationHandler {
  inTransaction(manager: EntityManager, bookingId: string): Promise<void>;
  afterCommit(bookingId: string): Promise<void>;
}

/**
 * The booking module's facade: holds, releases, expiry and the timeline. Redis (through the lock
 * provider) turns most contenders away early; every state change is a conditional write in
 * PostgreSQL, which alone decides who holds a seat.
 */
@Injectable()
export class BookingService {
  private readonly logger = new Logger(BookingService.name);
  private readonly cancellationHandlers: CancellationHandler[] = [];
  private readonly lapseListeners: ((at: number) => void)[] = [];

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly bookings: BookingRepository,
    private readonly timelines: BookingTimelineRepository,
    private readonly catalog: CatalogService,
    private readonly notifications: NotificationService,
    private readonly holds: HoldService,
    private readonly bestAvailable: BestAvailableService,
    private readonly generalAdmission: GeneralAdmissionService,
    private readonly config: AppConfigService,
    private readonly metrics: BookingMetrics,
  ) {}

  /** Holds the named seats, or (with `quantity`) the best available ones, all or none. */
  async hold(customer: AuthenticatedCustomer, input: CreateBookingDto): Promise<BookingDto> {
    const booking = await this.placeHold(customer, input);
    this.lapsesAt(booking);
    return booking;
  }

  /**
   * Registers who is told when this instance made work for the sweeper (epoch ms): a hold it made or
   * extended lapses then, or a seat-lock release Redis missed is to be retried.
   */
  onSweepDue(listener: (at: number) => void, retryAfterMs: number): void {
    this.lapseListeners.push(listener);
    this.holds.onUnreleased(() => listener(Date.now() + retryAfterMs));
  }

  /** When the next hold lapses (epoch ms), null when none is held. */
  nextHoldLapse(): Promise<number | null> {
    return this.bookings.nextLapse();
  }

  private lapsesAt(booking: BookingDto): void {
    const at = booking.expiresAt ? Date.parse(booking.expiresAt) : NaN;
    if (Number.isFinite(at)) for (const listener of this.lapseListeners) listener(at);
  }

  private async placeHold(
    customer: AuthenticatedCustomer,
    input: CreateBookingDto,
  ): Promise<BookingDto> {
    const seatMap = await this.catalog.getSeatMap(input.eventId);
    const bookingId = randomUUID();
    const units = this.generalAdmission.section(seatMap, input.section);
    if (units) {
      // GA is sold by quantity; `seatIds` cannot come with `section` (the DTO says so).
      return this.generalAdmission.hold(customer, seatMap, units, input.quantity ?? 0, bookingId);
    }
    if (input.quantity !== undefined) {
      return this.bestAvailable.hold(
        customer,
        seatMap,
        {
          eventId: seatMap.eventId,
          quantity: input.quantity,
          section: input.section,
          together: input.together,
        },
        bookingId,
      );
    }
    const labels = this.validateSeats(seatMap, input.seatIds ?? []);
    return this.holds.hold(customer, seatMap, labels, bookingId);
  }

  /**
   * Moves a live hold's expiry to now + HOLD_TTL_SECONDS, within HOLD_MAX_LIFETIME_SECONDS of its
   * creation, at most HOLD_MAX_EXTENSIONS times; then its seat locks in Redis follow.
   */
  async extend(customer: AuthenticatedCustomer, bookingId: string): Promise<BookingDto> {
    const result = await this.bookings.extend(bookingId, customer.id, {
      ttlSeconds: this.config.get('HOLD_TTL_SECONDS'),
      maxLifetimeSeconds: this.config.get('HOLD_MAX_LIFETIME_SECONDS'),
      maxExtensions: this.config.get('HOLD_MAX_EXTENSIONS'),
    });
    if (result.outcome === 'not_found' || !result.booking) throw BookingError.notFound(bookingId);
    if (result.outcome !== 'extended') {
      // A lapsed hold was expired by the same statement: its notifications are due.
      if (result.booking.status === 'expired') this.notifications.committed();
      throw BookingError.cannotExtend(result.outcome);
    }
    this.notifications.committed();
    this.lapsesAt(result.booking);
    await this.holds.extendLocks(result.booking);
    return result.booking;
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
    await this.holds.releaseLease(
      booking.seats.map((label) => seatLockKey(booking.eventId, label)),
      booking.id,
    );
    // GA units were admitted by permits, not locked: their permits go back.
    await this.generalAdmission.returned(booking.eventId, booking.seats);
    return booking;
  }

  /** Expires holds past their TTL, oldest first, one statement each; stops when `signal` fires. */
  async expireDueHolds(signal?: AbortSignal, batchSize = 200): Promise<number> {
    let expired = 0;
    for (const id of await this.bookings.lapsed(batchSize)) {
      if (signal?.aborted) break;
      const hold = await this.bookings.expire(id);
      if (!hold) continue;
      expired += 1;
      // A lapsed GA hold's permits go back at once, not at the count's next re-read.
      await this.generalAdmission.returned(hold.eventId, hold.labels);
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

  private async findOwned(customer: AuthenticatedCustomer, bookingId: string): Promise<BookingRow> {
    // Another customer's booking is answered exactly like a missing one.
    const row = await this.bookings.find(bookingId, customer.id);
    if (!row) throw BookingError.notFound(bookingId);
    return row;
  }

  /** Retries seat-lock releases Redis missed; answers how many are still pending. */
  retryUnreleasedLocks(): Promise<number> {
    return this.holds.retryUnreleasedLocks();
  }

  /** Whether seat-lock releases Redis missed are waiting for a retry. */
  get unreleasedLocks(): number {
    return this.holds.unreleasedCount;
  }
}

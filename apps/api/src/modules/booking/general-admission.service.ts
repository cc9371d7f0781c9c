import { Injectable, Logger } from '@nestjs/common';
import { LockProvider, LockUnavailableError } from '@app/lock';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import { SingleFlight } from '../../common/batching/single-flight';
import { RequestValidationError } from '../../common/errors/request-validation.error';
import { AppConfigService } from '../../config/app-config.service';
import { CatalogService } from '../catalog/catalog.service';
import { type SeatMap, type UnitSection, unitSectionIndex } from '../catalog/seat-map';
import { NotificationService } from '../notification/notification.service';
import { BookingRepository } from './booking.repository';
import { BookingError } from './booking.errors';
import { BookingMetrics } from './booking.metrics';
import type { BookingDto } from './dto/booking.dto';
import { HoldService } from './hold.service';

/**
 * How long Redis trusts its admission count before it is re-read from PostgreSQL: it bounds how
 * long a unit freed by a path that does not give its permit back (the sweeper, a lost seat) can be
 * refused by Redis while PostgreSQL has it.
 */
const ADMISSION_TTL_MS = 10_000;

/** The admission counter of one GA section; the event's hash tag keeps it on Redis Cluster too. */
export function admissionKey(eventId: string, gaIndex: number): string {
  return `ga:{event:${eventId}}:${gaIndex}`;
}

/**
 * General admission: a section of `capacity` units sold by quantity. Redis holds an admission count
 * per section, seeded from PostgreSQL's free units: a buyer takes `quantity` permits or is turned
 * away with `409 SOLD_OUT` without a PostgreSQL statement, so a 10,000-buyer crowd for 1,000 units
 * costs PostgreSQL about the number of holds. PostgreSQL decides: `seatlock_hold_units` claims the
 * first free unit rows with FOR UPDATE SKIP LOCKED (no single hot counter row), all or none, and the
 * rest is the seated path (TTL, payment, fenced confirm, release, expiry, cancellation, the cap).
 * The count may run high (it is re-read at least every ADMISSION_TTL_MS, or after a FLUSHALL): more
 * buyers reach PostgreSQL, which refuses them. Without Redis, PostgreSQL alone, behind the bulkhead.
 */
@Injectable()
export class GeneralAdmissionService {
  private readonly logger = new Logger(GeneralAdmissionService.name);
  private readonly seeds = new SingleFlight<number>();

  constructor(
    private readonly bookings: BookingRepository,
    private readonly catalog: CatalogService,
    private readonly holds: HoldService,
    private readonly lock: LockProvider,
    private readonly notifications: NotificationService,
    private readonly config: AppConfigService,
    private readonly metrics: BookingMetrics,
  ) {}

  /** The GA section of that name, or null when it is seated (or unknown). */
  section(seatMap: SeatMap, name: string | undefined): UnitSection | null {
    return seatMap.units.find((unit) => unit.name === name) ?? null;
  }

  async hold(
    customer: AuthenticatedCustomer,
    seatMap: SeatMap,
    section: UnitSection,
    quantity: number,
    bookingId: string,
  ): Promise<BookingDto> {
    const max = this.config.get('MAX_SEATS_PER_BOOKING');
    if (quantity > max) {
      throw new RequestValidationError([
        { field: 'quantity', messages: [`quantity must not be greater than ${max}`] },
      ]);
    }
    const admitted = await this.admit(seatMap, section, quantity);
    const write = () => this.write(customer, seatMap, section, quantity, bookingId);
    try {
      const booking = admitted ? await write() : await this.holds.withoutRedis(write);
      this.metrics.holds.inc({ outcome: 'held' });
      return booking;
    } catch (error) {
      if (admitted) await this.giveBack(seatMap.eventId, section.gaIndex, quantity);
      throw error;
    }
  }

  /**
   * Gives the permits of a GA booking's units back after it ended (released, cancelled), so the next
   * buyer is admitted at once rather than after the count's next re-read.
   */
  async returned(eventId: string, labels: readonly string[]): Promise<void> {
    const counts = new Map<number, number>();
    for (const label of labels) {
      const gaIndex = unitSectionIndex(label);
      if (gaIndex !== null) counts.set(gaIndex, (counts.get(gaIndex) ?? 0) + 1);
    }
    for (const [gaIndex, count] of counts) await this.giveBack(eventId, gaIndex, count);
  }

  /**
   * Takes `quantity` permits. True: admitted; false: Redis could not be asked (PostgreSQL decides
   * alone). Throws SOLD_OUT when Redis says too few are left.
   */
  private async admit(seatMap: SeatMap, section: UnitSection, quantity: number): Promise<boolean> {
    if (this.lock.mode === 'off') return false;
    try {
      const key = admissionKey(seatMap.eventId, section.gaIndex);
      const { taken, left, seeded } = await this.lock.takePermits(
        key,
        quantity,
        // A crowd that finds the count gone (expired, flushed) reads PostgreSQL once, not each.
        () => this.seeds.run(key, () => this.catalog.unitsAvailable(seatMap, section.name)),
        ADMISSION_TTL_MS,
      );
      if (taken) return true;
      this.metrics.holds.inc({ outcome: seeded ? 'sold_out_seeded' : 'sold_out_redis' });
      throw BookingError.soldOut(quantity, left, section.name);
    } catch (error) {
      if (!(error instanceof LockUnavailableError)) throw error;
      this.metrics.fallbacks.inc({ reason: `redis_${error.reason}` });
      return false;
    }
  }

  private async write(
    customer: AuthenticatedCustomer,
    seatMap: SeatMap,
    section: UnitSection,
    quantity: number,
    bookingId: string,
  ): Promise<BookingDto> {
    const limit = this.config.get('MAX_SEATS_PER_CUSTOMER_PER_EVENT');
    const result = await this.bookings.holdUnits({
      bookingId,
      customerId: customer.id,
      eventId: seatMap.eventId,
      section: section.name,
      quantity,
      priceCents: section.priceCents,
      currency: seatMap.currency,
      ttlSeconds: this.config.get('HOLD_TTL_SECONDS'),
      customerLimit: limit,
    });
    if (result.expired > 0) this.metrics.expired.inc({ by: 'inline' }, result.expired);
    if (result.expired > 0 || result.outcome === 'held') this.notifications.committed();
    if (result.outcome === 'held' && result.booking) return result.booking;
    if (result.outcome === 'limit')
      throw BookingError.customerLimit(limit, result.current_seats ?? 0);
    this.metrics.holds.inc({ outcome: 'sold_out_database' });
    throw BookingError.soldOut(quantity, result.available ?? 0, section.name);
  }

  private async giveBack(eventId: string, gaIndex: number, count: number): Promise<void> {
    if (this.lock.mode === 'off') return;
    try {
      await this.lock.returnPermits(admissionKey(eventId, gaIndex), count);
    } catch (error) {
      // The count runs low until it is re-read from PostgreSQL (ADMISSION_TTL_MS).
      this.logger.warn({ err: error, eventId, gaIndex, count }, 'Admission permits not returned');
    }
  }
}

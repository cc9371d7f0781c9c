import { performance } from 'node:perf_hooks';
import { Injectable } from '@nestjs/common';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import { RequestValidationError } from '../../common/errors/request-validation.error';
import { AppConfigService } from '../../config/app-config.service';
import { CatalogService } from '../catalog/catalog.service';
import type { SeatMap, SeatMapRow } from '../catalog/seat-map';
import type { SeatStatus } from '../catalog/seat.repository';
import { type Block, nextToEachOther, rankBlocks, rankSeats } from './best-available.picker';
import { BookingError } from './booking.errors';
import type { BookingDto } from './dto/booking.dto';
import { HoldService, type LockOutcome } from './hold.service';

/** Fresh looks at PostgreSQL's seat states one request may take before it gives up. */
const MAX_ATTEMPTS = 4;
/** Candidates offered to Redis per round trip, doubling each round (a stale look meets taken seats). */
const FIRST_ROUND = 32;
const MAX_ROUND = 512;

export interface BestAvailableRequest {
  eventId: string;
  quantity: number;
  section?: string;
  together?: boolean;
}

interface Snapshot {
  startedAt: number;
  statuses: Promise<SeatStatus[]>;
}

/**
 * Best available: choose the best free seats by the ranking, lock them, hold them. PostgreSQL's
 * seat states say what is free (one short read, shared by the requests that arrive while it runs);
 * Redis then hands each concurrent request a different block of the ranked candidates in one round
 * trip, so a crowd asking for "2 together" spreads over the rows instead of fighting for the
 * centre. The hold itself is the manual one: all or nothing, fenced, the orphan rule and the cap
 * checked in its statement. A seat taken between looking and holding means looking again.
 */
@Injectable()
export class BestAvailableService {
  /** The newest seat-state read per event, shared by requests that need one no older than it. */
  private readonly snapshots = new Map<string, Snapshot>();

  constructor(
    private readonly catalog: CatalogService,
    private readonly holds: HoldService,
    private readonly config: AppConfigService,
  ) {}

  async hold(
    customer: AuthenticatedCustomer,
    seatMap: SeatMap,
    request: BestAvailableRequest,
    bookingId: string,
  ): Promise<BookingDto & { nextToEachOther: boolean }> {
    const { quantity, section } = request;
    const together = request.together ?? true;
    const max = this.config.get('MAX_SEATS_PER_BOOKING');
    if (quantity > max) {
      throw new RequestValidationError([
        { field: 'quantity', messages: [`quantity must not be greater than ${max}`] },
      ]);
    }
    const rows = this.scope(seatMap, section);

    let lastRefusal: BookingError | null = null;
    // The first look may share a read already running; a later one must be newer than the refusal.
    let notBefore = 0;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      const statuses = await this.statuses(seatMap, notBefore);
      notBefore = performance.now();
      const free = (position: number): boolean => statuses[position] === 'free';
      const available = rows.reduce((sum, row) => sum + countFree(row, free), 0);
      if (available < quantity) throw BookingError.soldOut(quantity, available, section);
      let chosen: { block: Block; locked: LockOutcome } | null;
      if (together) {
        const candidates = rankBlocks(rows, free, quantity);
        if (candidates.length === 0) throw BookingError.notEnoughTogether(quantity, section);
        chosen = await this.lockBest(seatMap, candidates, bookingId);
      } else {
        chosen = await this.lockSeats(seatMap, rankSeats(rows, free), quantity, bookingId);
      }
      if (!chosen) continue;
      const labels = chosen.block.map((position) => seatMap.seats[position].label);
      try {
        const booking = await this.holds.write(customer, seatMap, labels, bookingId, chosen.locked);
        return { ...booking, nextToEachOther: nextToEachOther(seatMap.rows, chosen.block) };
      } catch (error) {
        // Taken (or stranding, by a state newer than the look) since: look again.
        if (!(error instanceof BookingError)) throw error;
        if (error.code !== 'BOOKING.SEAT_UNAVAILABLE' && error.code !== 'BOOKING.ORPHAN_SEAT') {
          throw error;
        }
        lastRefusal = error;
      }
    }
    if (lastRefusal?.code === 'BOOKING.ORPHAN_SEAT') throw lastRefusal;
    throw together
      ? BookingError.notEnoughTogether(quantity, section)
      : BookingError.soldOut(quantity, 0, section);
  }

  /** The rows in scope: the section's, or the event's. */
  private scope(seatMap: SeatMap, section: string | undefined): readonly SeatMapRow[] {
    if (section === undefined) return seatMap.rows;
    const rows = seatMap.rows.filter((row) => row.section === section);
    if (rows.length === 0) throw BookingError.unknownSection(section, seatMap.sections);
    return rows;
  }

  /**
   * Offers the ranked candidates to Redis, a growing slice per round trip, and returns the first it
   * granted; null when Redis saw every one taken (the look was stale: look again). Without Redis
   * the best candidate goes straight to PostgreSQL.
   */
  private async lockBest(
    seatMap: SeatMap,
    candidates: readonly Block[],
    bookingId: string,
  ): Promise<{ block: Block; locked: LockOutcome } | null> {
    let offset = 0;
    for (let size = FIRST_ROUND; offset < candidates.length; size = Math.min(size * 2, MAX_ROUND)) {
      const slice = candidates.slice(offset, offset + size);
      const groups = slice.map((block) => block.map((position) => seatMap.seats[position].label));
      const first = await this.holds.lockFirst(seatMap, groups, bookingId);
      if (first) return { block: slice[first.index], locked: first.locked };
      offset += slice.length;
    }
    return null;
  }

  /**
   * Locks the `quantity` best seats; the ones Redis names taken are passed over for the next best,
   * within this look. Null when too few are left in it.
   */
  private async lockSeats(
    seatMap: SeatMap,
    ranked: readonly number[],
    quantity: number,
    bookingId: string,
  ): Promise<{ block: Block; locked: LockOutcome } | null> {
    const taken = new Set<number>();
    for (let round = 0; round < MAX_ROUND / FIRST_ROUND; round += 1) {
      const block = ranked.filter((position) => !taken.has(position)).slice(0, quantity);
      if (block.length < quantity) return null;
      const labels = block.map((position) => seatMap.seats[position].label);
      const result = await this.holds.lockSeats(seatMap, labels, bookingId);
      if ('locked' in result) return { block, locked: result.locked };
      block.forEach((position, i) => result.busy.includes(labels[i]) && taken.add(position));
    }
    return null;
  }

  /**
   * The event's seat states, read no earlier than `notBefore`: a read already running that started
   * after it is shared, so a stampede costs PostgreSQL a few reads rather than one per request.
   */
  private statuses(seatMap: SeatMap, notBefore: number): Promise<SeatStatus[]> {
    const current = this.snapshots.get(seatMap.eventId);
    if (current && current.startedAt >= notBefore) return current.statuses;
    const snapshot: Snapshot = {
      startedAt: performance.now(),
      statuses: this.catalog.seatStatuses(seatMap),
    };
    this.snapshots.set(seatMap.eventId, snapshot);
    const forget = (): void => {
      if (this.snapshots.get(seatMap.eventId) === snapshot) this.snapshots.delete(seatMap.eventId);
    };
    snapshot.statuses.then(forget, forget);
    return snapshot.statuses;
  }
}

function countFree(row: SeatMapRow, free: (position: number) => boolean): number {
  let count = 0;
  for (let position = row.first; position < row.first + row.length; position += 1) {
    if (free(position)) count += 1;
  }
  return count;
}

import { performance } from 'node:perf_hooks';
import { Injectable } from '@nestjs/common';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import { RequestValidationError } from '../../common/errors/request-validation.error';
import { AppConfigService } from '../../config/app-config.service';
import { CatalogService } from '../catalog/catalog.service';
import type { SeatMap, SeatMapRow, SeatStatus } from '../catalog/seat-map';
import { type Block, nextToEachOther, rankBlocks, rankSeats } from './best-available.picker';
import { BookingError } from './booking.errors';
import type { BookingDto } from './dto/booking.dto';
import { HoldService, type LockOutcome } from './hold.service';

/** Refusals by PostgreSQL (seat taken or stranding since the look) one request accepts. */
const MAX_ATTEMPTS = 4;
/** Candidates one request tries in Redis per look before it looks again. */
const MAX_ROUNDS = 16;

export interface BestAvailableRequest {
  eventId: string;
  quantity: number;
  section?: string;
  together?: boolean;
}

/** One read of an event's seat states, and the candidates ranked from it. */
interface Look {
  startedAt: number;
  statuses: Promise<SeatStatus[]>;
  plans: Map<string, Plan>;
}

/** The ranked candidates of one look for one kind of request (section, quantity, together). */
interface Plan {
  statuses: SeatStatus[];
  rows: readonly SeatMapRow[];
  /** Seat positions of each candidate, best first (single seats when not together). */
  blocks: Block[];
  /** Seats Redis said someone else holds, found by requests using this plan. */
  busy: Set<number>;
  /** Candidates before it had a seat in flight or busy when last passed. */
  cursor: number;
}

type Chosen = { block: Block; locked: LockOutcome };

/**
 * Best available: choose the best free seats by the ranking, lock them, hold them. PostgreSQL's
 * seat states say what is free (one short read, shared by the requests that arrive while it runs,
 * ranked once); seats this instance is holding for other requests right now count as taken, so
 * each request of a crowd is handed a different block and the crowd spreads over the rows without
 * a conflict. The request then locks exactly those seats in Redis (held by another instance: the
 * next candidate) and holds them with the manual hold's statement — all or nothing, fenced, the
 * orphan rule and the cap checked there. A seat taken between looking and holding means looking
 * again; SOLD_OUT and NOT_ENOUGH_TOGETHER are only answered from a look taken after the request
 * arrived. One request alone always gets the best seats by the current state.
 */
@Injectable()
export class BestAvailableService {
  /** The read of seat states running now per event, shared by the requests that arrive meanwhile. */
  private readonly looks = new Map<string, Look>();
  /** Per event, seats handed to requests of this instance that have not finished yet. */
  private readonly inFlight = new Map<string, Set<number>>();

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
    const arrival = performance.now();
    const inFlight = this.inFlightSeats(seatMap.eventId);

    let notBefore = 0;
    let refusal: BookingError | null = null;
    for (let attempt = 0; attempt < MAX_ATTEMPTS;) {
      const look = this.look(seatMap, notBefore);
      const plan = this.plan(await look.statuses, look, rows, inFlight, quantity, together);
      const chosen = await this.lockNext(seatMap, plan, inFlight, quantity, together, bookingId);
      if (!chosen) {
        // Nothing left in this look. From a look newer than the request, that is the answer.
        if (look.startedAt >= arrival)
          throw this.refusal(plan, inFlight, quantity, together, section);
        notBefore = arrival;
        continue;
      }
      const labels = chosen.block.map((position) => seatMap.seats[position].label);
      try {
        const booking = await this.holds.write(customer, seatMap, labels, bookingId, chosen.locked);
        return { ...booking, nextToEachOther: nextToEachOther(seatMap.rows, chosen.block) };
      } catch (error) {
        const retry =
          error instanceof BookingError &&
          (error.code === 'BOOKING.SEAT_UNAVAILABLE' || error.code === 'BOOKING.ORPHAN_SEAT');
        if (!retry) throw error;
        // Taken, or stranding by a state newer than the look: look again.
        refusal = error;
        attempt += 1;
        notBefore = performance.now();
      } finally {
        for (const position of chosen.block) inFlight.delete(position);
      }
    }
    if (refusal?.code === 'BOOKING.ORPHAN_SEAT') throw refusal;
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

  /** SOLD_OUT when too few seats are left at all, else NOT_ENOUGH_TOGETHER. */
  private refusal(
    plan: Plan,
    inFlight: ReadonlySet<number>,
    quantity: number,
    together: boolean,
    section: string | undefined,
  ): BookingError {
    let left = 0;
    for (const row of plan.rows) {
      for (let position = row.first; position < row.first + row.length; position += 1) {
        if (isFree(plan, inFlight, position)) left += 1;
      }
    }
    return left < quantity || !together
      ? BookingError.soldOut(quantity, left, section)
      : BookingError.notEnoughTogether(quantity, section);
  }

  /**
   * Takes the best candidate of the plan with no seat in flight or busy, marks its seats in flight
   * and locks them; seats Redis says someone else holds are marked busy and the next candidate is
   * tried. Null when the plan has none left.
   */
  private async lockNext(
    seatMap: SeatMap,
    plan: Plan,
    inFlight: Set<number>,
    quantity: number,
    together: boolean,
    bookingId: string,
  ): Promise<Chosen | null> {
    for (let round = 0; round < MAX_ROUNDS; round += 1) {
      const block = together ? nextBlock(plan, inFlight) : nextSeats(plan, inFlight, quantity);
      if (!block) return null;
      for (const position of block) inFlight.add(position);
      const labels = block.map((position) => seatMap.seats[position].label);
      let result: Awaited<ReturnType<HoldService['lockSeats']>>;
      try {
        result = await this.holds.lockSeats(seatMap, labels, bookingId);
      } catch (error) {
        for (const position of block) inFlight.delete(position);
        throw error;
      }
      if ('locked' in result) return { block, locked: result.locked };
      for (const position of block) inFlight.delete(position);
      block.forEach((position, i) => result.busy.includes(labels[i]) && plan.busy.add(position));
    }
    return null;
  }

  /** This look's candidates for the request, ranked once and shared by the requests using it. */
  private plan(
    statuses: SeatStatus[],
    look: Look,
    rows: readonly SeatMapRow[],
    inFlight: ReadonlySet<number>,
    quantity: number,
    together: boolean,
  ): Plan {
    const key = `${rows[0]?.section ?? ''}|${rows.length}|${quantity}|${together}`;
    let plan = look.plans.get(key);
    if (plan) return plan;
    const free = (position: number): boolean =>
      statuses[position] === 'free' && !inFlight.has(position);
    plan = {
      statuses,
      rows,
      blocks: together
        ? rankBlocks(rows, free, quantity)
        : rankSeats(rows, free).map((position) => [position]),
      busy: new Set(),
      cursor: 0,
    };
    look.plans.set(key, plan);
    return plan;
  }

  /** Per event, the seats this instance's requests are holding right now. */
  private inFlightSeats(eventId: string): Set<number> {
    let seats = this.inFlight.get(eventId);
    if (!seats) {
      seats = new Set();
      this.inFlight.set(eventId, seats);
    }
    return seats;
  }

  /**
   * A look at the event's seat states that started no earlier than `notBefore`: the read running
   * now is shared, so a stampede costs PostgreSQL a few reads rather than one per request.
   */
  private look(seatMap: SeatMap, notBefore: number): Look {
    const current = this.looks.get(seatMap.eventId);
    if (current && current.startedAt >= notBefore) return current;
    const look: Look = {
      startedAt: performance.now(),
      statuses: this.catalog.seatStatuses(seatMap),
      plans: new Map(),
    };
    this.looks.set(seatMap.eventId, look);
    const forget = (): void => {
      if (this.looks.get(seatMap.eventId) === look) this.looks.delete(seatMap.eventId);
      const seats = this.inFlight.get(seatMap.eventId);
      if (seats?.size === 0) this.inFlight.delete(seatMap.eventId);
    };
    look.statuses.then(forget, forget);
    return look;
  }
}

function isFree(plan: Plan, inFlight: ReadonlySet<number>, position: number): boolean {
  return plan.statuses[position] === 'free' && !inFlight.has(position) && !plan.busy.has(position);
}

/** The best block whose seats are all free, not in flight and not busy. */
function nextBlock(plan: Plan, inFlight: ReadonlySet<number>): Block | null {
  for (let i = plan.cursor; i < plan.blocks.length; i += 1) {
    const block = plan.blocks[i];
    if (block.every((position) => isFree(plan, inFlight, position))) return block;
    if (i === plan.cursor) plan.cursor += 1;
  }
  return null;
}

/** The best `quantity` single seats that are free, not in flight and not busy, wherever they are. */
function nextSeats(plan: Plan, inFlight: ReadonlySet<number>, quantity: number): Block | null {
  const seats: number[] = [];
  for (let i = 0; i < plan.blocks.length && seats.length < quantity; i += 1) {
    const [position] = plan.blocks[i];
    if (isFree(plan, inFlight, position)) seats.push(position);
  }
  return seats.length === quantity ? seats : null;
}

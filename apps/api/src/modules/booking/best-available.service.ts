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

/** Refusals by PostgreSQL (seat taken or stranding since the look) one request accepts. */
const MAX_ATTEMPTS = 4;
/** Candidates one request tries in Redis per look before it looks again. */
const MAX_ROUNDS = 16;
/** A look this young is shared by new requests (a refusal is only ever answered from a newer one). */
const LOOK_REUSE_MS = 250;

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
  /** Free seats in scope. */
  available: number;
  /** Seat positions of each candidate, best first (single seats when not together). */
  blocks: Block[];
  /**
   * Seats already given to a request of this look (or found taken in Redis): the next request gets
   * the best candidate left, so a crowd on one instance spreads over the blocks without a conflict.
   */
  handedOut: Set<number>;
  /** Candidates before it are all handed out. */
  cursor: number;
}

/**
 * Best available: choose the best free seats by the ranking, lock them, hold them. PostgreSQL's
 * seat states say what is free (one short read, shared by the requests of the next moment, ranked
 * once); each request is handed the best candidate no other request of that look was given, then
 * locks it in Redis (taken by another instance: the next one) and holds it with the manual hold's
 * statement — all or nothing, fenced, the orphan rule and the cap checked there. A seat taken
 * between looking and holding means looking again; SOLD_OUT and NOT_ENOUGH_TOGETHER are only
 * answered from a look taken after the request arrived.
 */
@Injectable()
export class BestAvailableService {
  /** The newest look per event, while it may still be shared. */
  private readonly looks = new Map<string, Look>();

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

    let notBefore = arrival - LOOK_REUSE_MS;
    let refusal: BookingError | null = null;
    for (let attempt = 0; attempt < MAX_ATTEMPTS;) {
      const look = this.look(seatMap, notBefore);
      const plan = this.plan(await look.statuses, look, seatMap, rows, quantity, together);
      const chosen = await this.lockNext(seatMap, plan, quantity, together, bookingId);
      if (!chosen) {
        // Nothing left in this look. From a look newer than the request, that is the answer.
        if (look.startedAt >= arrival) {
          const left = plan.available - plan.handedOut.size;
          throw left < quantity
            ? BookingError.soldOut(quantity, Math.max(left, 0), section)
            : BookingError.notEnoughTogether(quantity, section);
        }
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
        if (!retry) {
          // Refused for another reason (the cap, an outage): the seats are free for the next one.
          giveBack(plan, chosen.block);
          throw error;
        }
        // Taken, or stranding by a state newer than the look: look again.
        refusal = error;
        attempt += 1;
        notBefore = performance.now();
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

  /**
   * Takes the best candidate left in the plan and locks its seats; seats Redis says someone else
   * holds are marked and the next candidate is tried. Null when the plan has none left.
   */
  private async lockNext(
    seatMap: SeatMap,
    plan: Plan,
    quantity: number,
    together: boolean,
    bookingId: string,
  ): Promise<{ block: Block; locked: LockOutcome } | null> {
    for (let round = 0; round < MAX_ROUNDS; round += 1) {
      const block = together ? nextBlock(plan) : nextSeats(plan, quantity);
      if (!block) return null;
      const labels = block.map((position) => seatMap.seats[position].label);
      const result = await this.holds.lockSeats(seatMap, labels, bookingId);
      if ('locked' in result) return { block, locked: result.locked };
      // Held by someone else: those seats stay marked; the rest of the block goes back.
      const busy = new Set(result.busy);
      giveBack(
        plan,
        block.filter((_, i) => !busy.has(labels[i])),
      );
    }
    return null;
  }

  /** This look's candidates for the request, ranked once and shared by the requests using it. */
  private plan(
    statuses: SeatStatus[],
    look: Look,
    seatMap: SeatMap,
    rows: readonly SeatMapRow[],
    quantity: number,
    together: boolean,
  ): Plan {
    const key = `${rows[0]?.section ?? ''}|${rows.length}|${quantity}|${together}`;
    let plan = look.plans.get(key);
    if (plan) return plan;
    const free = (position: number): boolean => statuses[position] === 'free';
    plan = {
      available: rows.reduce((sum, row) => sum + countFree(row, free), 0),
      blocks: together
        ? rankBlocks(rows, free, quantity)
        : rankSeats(rows, free).map((position) => [position]),
      handedOut: new Set(),
      cursor: 0,
    };
    look.plans.set(key, plan);
    return plan;
  }

  /**
   * A look at the event's seat states no older than `notBefore`: the newest one is shared while it
   * runs and for LOOK_REUSE_MS after, so a stampede costs PostgreSQL a few reads, not one each.
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
    };
    look.statuses.then(() => setTimeout(forget, LOOK_REUSE_MS).unref(), forget);
    return look;
  }
}

/** The best block none of whose seats is handed out; marks its seats. */
function nextBlock(plan: Plan): Block | null {
  for (let i = plan.cursor; i < plan.blocks.length; i += 1) {
    const block = plan.blocks[i];
    if (block.some((position) => plan.handedOut.has(position))) {
      if (i === plan.cursor) plan.cursor += 1;
      continue;
    }
    for (const position of block) plan.handedOut.add(position);
    return block;
  }
  return null;
}

/** The best `quantity` single seats not handed out, wherever they are; marks them. */
function nextSeats(plan: Plan, quantity: number): Block | null {
  const seats: number[] = [];
  for (let i = plan.cursor; i < plan.blocks.length && seats.length < quantity; i += 1) {
    const [position] = plan.blocks[i];
    if (!plan.handedOut.has(position)) seats.push(position);
    else if (i === plan.cursor) plan.cursor += 1;
  }
  if (seats.length < quantity) return null;
  for (const position of seats) plan.handedOut.add(position);
  return seats;
}

/** Seats a request did not end up holding go back to the plan. */
function giveBack(plan: Plan, positions: readonly number[]): void {
  if (positions.length === 0) return;
  for (const position of positions) plan.handedOut.delete(position);
  plan.cursor = 0;
}

function countFree(row: SeatMapRow, free: (position: number) => boolean): number {
  let count = 0;
  for (let position = row.first; position < row.first + row.length; position += 1) {
    if (free(position)) count += 1;
  }
  return count;
}

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as HttpClient } from 'undici';
import * as http from '../support/bench/bench-http';
import type { Child } from '../support/bench/child-processes';
import { BenchError, withTimeout } from '../support/bench/cli';
import { mapLimit } from '../support/bench/stats';
import { FLOW_PAYMENT_METHOD, FLOW_PRICE_CENTS } from './own-sql-flow';

/*
 * The flow benchmark's load: one virtual customer per connection, hold → pay, each seat asked
 * for once; a 201 that says anything but held, then captured + confirmed, is a violation.
 */

/** Seats per second of run, made up front: far above what 2 cores reach. */
const API_SEATS_PER_SECOND = 2_000;

export type Seat = { eventId: string; label: string };
export type Vu = { api: string; token: string; client: HttpClient };
type Reply = { status: number | string; body: any; text: string; ms: number };

class Phase {
  stop: boolean;
  readonly deadline: number;
  readonly cycles: { endedAt: number; hold: number; pay: number; cycle: number }[] = [];
  readonly errors: Record<string, number> = {};
  readonly errorSamples: Record<string, string> = {};
  readonly violations: string[] = [];
  outOfSeats = false;

  constructor(seconds: number) {
    this.stop = seconds <= 0;
    this.deadline = performance.now() + seconds * 1000;
  }

  /** False, with the error counted, unless a 201; after a network error, a short pause. */
  async accepted(step: string, reply: Reply): Promise<boolean> {
    if (reply.status === 201) return true;
    const key = `${step} ${reply.status}`;
    this.errors[key] = (this.errors[key] ?? 0) + 1;
    this.errorSamples[key] ??= reply.text.slice(0, 300);
    if (typeof reply.status === 'string') await sleep(50);
    return false;
  }

  violated(violation: string | null): boolean {
    if (violation) this.violations.push(violation);
    return violation !== null;
  }
}

async function send(vu: Vu, path: string, body: unknown, idempotencyKey?: string): Promise<Reply> {
  const started = performance.now();
  try {
    const options = { token: vu.token, body, idempotencyKey, dispatcher: vu.client };
    const answer = await http.call(vu.api, 'POST', path, options);
    return { ...answer, ms: performance.now() - started };
  } catch (error) {
    const { code, name, message } = error as Error & { code?: string };
    return { status: `error:${code ?? name}`, body: null, text: message, ms: 0 };
  }
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The hold answer must be this seat, held; the payment answer its booking, captured, confirmed. */
function violation(hold: any, seat: Seat, pay?: any): string | null {
  const held = [hold?.status, hold?.eventId, hold?.seats, hold?.amountCents];
  if (!same(held, ['held', seat.eventId, [seat.label], FLOW_PRICE_CENTS])) {
    return `hold of ${seat.eventId}/${seat.label} answered 201 ${JSON.stringify(hold)}`;
  }
  if (pay === undefined) return null;
  const { booking: b, payment: p } = pay ?? {};
  const paid = [b?.id, b?.status, b?.seats, p?.status, p?.bookingId, p?.amountCents];
  if (same(paid, [hold.id, 'confirmed', hold.seats, 'captured', hold.id, hold.amountCents])) {
    return null;
  }
  return `payment of booking ${hold.id} answered 201 ${JSON.stringify(pay)}`;
}

async function virtualUser(vu: Vu, seats: Seat[], phase: Phase, api: Child): Promise<void> {
  while (!phase.stop && !api.hasExited) {
    const seat = seats.pop();
    if (!seat) {
      phase.outOfSeats = true;
      return;
    }
    const started = performance.now();
    const hold = await send(vu, '/bookings', { eventId: seat.eventId, seatIds: [seat.label] });
    if (!(await phase.accepted('hold', hold)) || phase.violated(violation(hold.body, seat))) {
      continue;
    }
    const route = `/bookings/${hold.body.id}/payments`;
    const pay = await send(vu, route, { paymentMethod: FLOW_PAYMENT_METHOD }, randomUUID());
    if (!(await phase.accepted('pay', pay))) continue;
    if (phase.violated(violation(hold.body, seat, pay.body))) continue;
    const endedAt = performance.now();
    phase.cycles.push({ endedAt, hold: hold.ms, pay: pay.ms, cycle: endedAt - started });
  }
}

/** Every virtual customer loops for `seconds`; fails if the API exits meanwhile. */
export async function runPhase(seconds: number, vus: Vu[], seats: Seat[], api: Child) {
  const phase = new Phase(seconds);
  const timer = setTimeout(() => (phase.stop = true), seconds * 1000);
  try {
    const loops = Promise.all(vus.map((vu) => virtualUser(vu, seats, phase, api)));
    await withTimeout(loops, seconds * 1000 + 70_000, 'the load phase');
  } finally {
    clearTimeout(timer);
    phase.stop = true;
  }
  if (api.hasExited) throw new BenchError(`the API exited:\n${api.tail.join('\n')}`);
  return phase;
}

/** Events enough for API_SEATS_PER_SECOND, their seats interleaved, and one client per customer. */
export async function setUpLoad(
  api: string,
  adminToken: string,
  o: { customers: number; warmup: number; duration: number },
  log: (message: string) => void,
) {
  const needed = API_SEATS_PER_SECOND * (o.warmup + o.duration);
  const count = Math.ceil(Math.max(o.customers * 4, needed) / 10_000);
  log(`creating ${count} events of 10,000 seats and ${o.customers} customers`);
  const events = await mapLimit(Array.from({ length: count }), 1, (_, i) =>
    http.createEvent(api, adminToken, `Flow bench ${i + 1}`, 100, 100, FLOW_PRICE_CENTS),
  );
  // Taken from the end (pop), round-robin over the events: the warm-up loads every seat map.
  const seats: Seat[] = events[0].labels.flatMap((_, i) =>
    events.map((event) => ({ eventId: event.id, label: event.labels[i] })),
  );
  seats.reverse();
  const customers = await http.registerCustomers(api, o.customers, randomUUID().slice(0, 8));
  const timeouts = { keepAliveTimeout: 120_000, headersTimeout: 30_000, bodyTimeout: 30_000 };
  const vus = customers.map(({ token }) => ({ api, token, client: new HttpClient(api, timeouts) }));
  return { vus, seats };
}

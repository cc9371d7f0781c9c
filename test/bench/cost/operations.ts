import * as http from '../../support/bench/bench-http';
import type { BenchCustomer, BenchEvent } from '../../support/bench/bench-http';
import { type LoadRequest, loadWindow } from '../../support/bench/load';
import { mapLimit } from '../../support/bench/stats';
import { fireWave, tallyShots, waveAgent } from '../../support/bench/wave';
import { log, run, type Stack } from './cost-stack';

/*
 * The HTTP operations at full speed on autocannon (hold, 409, best available, GA unit claim) and
 * the release of the holds' bookings (a fixed list, 64 at a time): their events, customers, loads.
 */

export const CONNECTIONS = 64;
/** Seats per second the events are made for: far above what 2 cores reach. */
const OPS_PER_SECOND = 1_500;
const SEATS_PER_EVENT = 10_000;
const GA_SECTION = 'Standing';
const CONFLICT_CUSTOMERS = 256;

export interface Prepared {
  holdEvents: BenchEvent[];
  bestEvents: BenchEvent[];
  gaEvents: string[];
  conflictEvent: BenchEvent;
  customers: BenchCustomer[];
  conflictCustomers: BenchCustomer[];
  /** The next unused seat of holdEvents: the warm-up and the window take distinct seats. */
  nextSeat: number;
}

/** An event of one GA section of SEATS_PER_EVENT units. */
async function createGaEvent(api: string, name: string): Promise<string> {
  const body = {
    name: `${name} ${new Date().toISOString()}`,
    startsAt: '2027-06-01T19:30:00Z',
    venue: 'Bench Arena',
    currency: 'EUR',
    sections: [{ name: GA_SECTION, capacity: SEATS_PER_EVENT, priceCents: 5_000 }],
  };
  const answer = await http.call(api, 'POST', '/admin/events', { token: run.adminToken, body });
  return http.expectStatus<{ id: string }>(answer, 201, 'POST /admin/events (GA)').id;
}

/** Events for `seconds` (+1 of warm-up) at OPS_PER_SECOND, customers, the hammered seat held. */
export async function prepare(stack: Stack, seconds: number): Promise<Prepared> {
  const api = stack.api.url;
  const count = (seatsPerOp: number) =>
    Array.from({
      length: Math.ceil((OPS_PER_SECOND * (seconds + 1) * seatsPerOp) / SEATS_PER_EVENT),
    });
  log('creating events and customers');
  const seated = (name: string) => (_: unknown, i: number) =>
    http.createEvent(api, run.adminToken, `${name} ${i + 1}`, 100, 100);
  const holdEvents = await mapLimit(count(1), 1, seated('Holds'));
  const bestEvents = await mapLimit(count(2), 1, seated('Best available'));
  const gaEvents = await mapLimit(count(1), 1, (_, i) => createGaEvent(api, `GA ${i + 1}`));
  const conflictEvent = await http.createEvent(api, run.adminToken, 'Conflict', 1, 10);
  const customers = await http.registerCustomers(api, CONNECTIONS, 'cost');
  const conflictCustomers = await http.registerCustomers(api, CONFLICT_CUSTOMERS, 'cost-409');
  // The seat the 409 path hammers: held by someone who is not among the hammering customers.
  const [owner] = await http.registerCustomers(api, 1, 'cost-owner');
  const body = { eventId: conflictEvent.id, seatIds: [conflictEvent.labels[0]] };
  const held = await http.call(api, 'POST', '/bookings', { token: owner.token, body });
  http.expectStatus(held, 201, 'the hammered hold');
  const allEvents = [...holdEvents, ...bestEvents, conflictEvent];
  await http.warmCaches(api, [...customers, ...conflictCustomers], allEvents);
  for (const id of gaEvents) await http.call(api, 'GET', `/events/${id}/seats`);
  const events = { holdEvents, bestEvents, gaEvents, conflictEvent };
  return { ...events, customers, conflictCustomers, nextSeat: 0 };
}

export const HTTP_OPERATIONS = ['hold', 'conflict', 'best', 'ga'] as const;
export type HttpOperation = (typeof HTTP_OPERATIONS)[number];

/** The requests of one operation, each customer in turn; `exhausted` if it ran out of seats. */
function requests(name: HttpOperation, p: Prepared) {
  let [turn, exhausted] = [0, false];
  const total = p.holdEvents.length * SEATS_PER_EVENT;
  const bodies: Record<HttpOperation, () => unknown> = {
    hold: () => {
      if (p.nextSeat >= total) exhausted = true;
      const n = Math.min(p.nextSeat++, total - 1);
      const event = p.holdEvents[Math.floor(n / SEATS_PER_EVENT)];
      return { eventId: event.id, seatIds: [event.labels[n % SEATS_PER_EVENT]] };
    },
    conflict: () => ({ eventId: p.conflictEvent.id, seatIds: [p.conflictEvent.labels[0]] }),
    best: () => ({ eventId: p.bestEvents[turn % p.bestEvents.length].id, quantity: 2 }),
    ga: () => ({ eventId: p.gaEvents[turn % p.gaEvents.length], section: GA_SECTION, quantity: 1 }),
  };
  const customers = name === 'conflict' ? p.conflictCustomers : p.customers;
  const next = (): LoadRequest => {
    const body = JSON.stringify(bodies[name]());
    const { token } = customers[turn++ % customers.length];
    return {
      method: 'POST',
      path: '/bookings',
      body,
      headers: { authorization: `Bearer ${token}` },
    };
  };
  return { next, expected: name === 'conflict' ? 409 : 201, exhausted: () => exhausted };
}

/** One operation at full speed: `seconds` on CONNECTIONS connections. */
export async function httpLoad(stack: Stack, p: Prepared, name: HttpOperation, seconds: number) {
  const load = requests(name, p);
  const result = await loadWindow({
    url: stack.api.url,
    connections: CONNECTIONS,
    seconds,
    expected: load.expected,
    next: load.next,
  });
  const { ok, statuses, errors, perSecond, latencyMs } = result;
  return {
    ops: ok,
    detail: { perSecond, statuses, errors, latencyMs, exhausted: load.exhausted() },
  };
}

/** The bookings the holds made, still held, with their customers' tokens. */
export async function heldBookings(stack: Stack, p: Prepared) {
  const { rows } = await stack.db.query<{ id: string; customer_id: string }>(
    `SELECT id, customer_id FROM bookings WHERE status = 'held' AND event_id = ANY($1) ORDER BY id`,
    [p.holdEvents.map((event) => event.id)],
  );
  const tokens = new Map(p.customers.map((c) => [c.id, c.token]));
  return rows.map((row) => ({
    token: tokens.get(row.customer_id) ?? '',
    method: 'DELETE' as const,
    path: `/bookings/${row.id}`,
  }));
}

/** DELETE /bookings/{id} of `bookings`, CONNECTIONS at a time. */
export async function release(stack: Stack, bookings: Awaited<ReturnType<typeof heldBookings>>) {
  const agent = await waveAgent(stack.api.url, CONNECTIONS);
  try {
    const wave = await fireWave({
      api: stack.api.url,
      agent,
      requests: bookings,
      concurrency: CONNECTIONS,
    });
    const tally = tallyShots(wave.shots);
    const ok = tally.statuses['200'] ?? 0;
    const perSecond = ok / (wave.wallMs / 1000);
    return { ops: ok, detail: { perSecond, codes: tally.codes, latencyMs: tally.latency } };
  } finally {
    await agent.close();
  }
}

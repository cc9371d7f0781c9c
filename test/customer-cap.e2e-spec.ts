import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { HoldSweeperService } from '../apps/api/src/modules/booking/hold-sweeper.service';
import {
  countStatuses,
  createEvent,
  type Customer,
  registerCustomer,
  registerCustomers,
} from './support/fixtures';
import type { ApiResponse } from './support/test-app';
import { TestApp } from './support/test-app';
import { expectNoServerErrors, expectProblem } from './support/problem-assertions';

/**
 * MAX_SEATS_PER_CUSTOMER_PER_EVENT: seats one customer holds or has booked for one event. Beyond it
 * 409 BOOKING.CUSTOMER_LIMIT `{limit, current}`; released, expired and cancelled seats count no
 * more. Race-free, across API instances too.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A1…A10, B1…B10, … for a 5×10 event: `count` distinct labels from `from`. */
function labels(count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => {
    const n = from + i;
    return `${String.fromCharCode(65 + Math.floor(n / 10))}${(n % 10) + 1}`;
  });
}

function expectLimit(response: ApiResponse, limit: number, current: number): void {
  expectProblem(response, 409, 'BOOKING.CUSTOMER_LIMIT');
  expect({ limit: response.body.limit, current: response.body.current }).toEqual({
    limit,
    current,
  });
}

describe('per-customer seat cap (real PostgreSQL and Redis)', () => {
  /** MAX_SEATS_PER_CUSTOMER_PER_EVENT 10. */
  let api: TestApp;
  /** A second instance with the same settings, on the same database and Redis. */
  let twin: TestApp;
  /** The default cap (20). */
  let defaults: TestApp;
  /** MAX_SEATS_PER_CUSTOMER_PER_EVENT 2, HOLD_TTL_SECONDS 1, sweeper idle. */
  let shortHolds: TestApp;
  let db: DataSource;

  beforeAll(async () => {
    api = await TestApp.start({ MAX_SEATS_PER_CUSTOMER_PER_EVENT: '10' });
    twin = await TestApp.start({ MAX_SEATS_PER_CUSTOMER_PER_EVENT: '10' });
    defaults = await TestApp.start();
    shortHolds = await TestApp.start({
      MAX_SEATS_PER_CUSTOMER_PER_EVENT: '2',
      HOLD_TTL_SECONDS: '1',
      SWEEP_INTERVAL_MS: '3600000',
    });
    db = api.app.get(DataSource);
  });

  afterAll(async () => {
    for (const app of [api, twin, defaults, shortHolds]) await app?.close();
  });

  const newEvent = (on: TestApp = api) =>
    createEvent(on, [{ name: 'Floor', rows: 5, seatsPerRow: 10, priceCents: 1000 }]);

  const hold = (who: Customer, eventId: string, seatIds: string[], on: TestApp = api) =>
    on.post('/bookings', { eventId, seatIds }, { token: who.token });

  async function mustHold(
    who: Customer,
    eventId: string,
    seatIds: string[],
    on: TestApp = api,
  ): Promise<string> {
    const response = await hold(who, eventId, seatIds, on);
    if (response.status !== 201) {
      throw new Error(`hold: ${response.status} ${JSON.stringify(response.body)}`);
    }
    return response.body.id;
  }

  /** This customer's non-free seats of the event, from the seats table. */
  async function seatsOf(customer: Customer, eventId: string) {
    return db.query<{ label: string; status: string }[]>(
      `SELECT s.label, s.status FROM seats s JOIN bookings b ON b.id = s.booking_id
       WHERE s.event_id = $1 AND b.customer_id = $2 ORDER BY s.position`,
      [eventId, customer.id],
    );
  }

  async function eventState(eventId: string) {
    const seats = await db.query(
      `SELECT label, status, booking_id, fence FROM seats WHERE event_id = $1 ORDER BY position`,
      [eventId],
    );
    const [{ count }] = await db.query(
      `SELECT count(*)::int AS count FROM bookings WHERE event_id = $1`,
      [eventId],
    );
    return { seats, bookings: count as number };
  }

  it('50 concurrent single-seat holds by one customer (cap 10): exactly 10 × 201, 40 × 409 {limit 10, current 10}', async () => {
    const eventId = await newEvent();
    const alice = await registerCustomer(api);

    const responses = await Promise.all(labels(50).map((label) => hold(alice, eventId, [label])));
    expectNoServerErrors(responses);

    expect(countStatuses(responses.map((r) => r.status))).toEqual({ 201: 10, 409: 40 });
    for (const r of responses.filter((r) => r.status === 409)) expectLimit(r, 10, 10);
    const won = responses.filter((r) => r.status === 201);
    const mine = await seatsOf(alice, eventId);
    expect(mine).toHaveLength(10);
    expect(mine.every((s) => s.status === 'held')).toBe(true);
    expect(mine.map((s) => s.label).sort()).toEqual(won.map((r) => r.body.seats[0]).sort());
    const state = await eventState(eventId);
    expect(state.bookings).toBe(10);
    expect(state.seats.filter((s: { status: string }) => s.status !== 'free')).toHaveLength(10);

    // Releasing one allows exactly one more, even when five race for it.
    const released = await api.delete(`/bookings/${won[0].body.id}`, { token: alice.token });
    expect(released.body.status).toBe('released');
    const taken = new Set(mine.map((s) => s.label));
    const free = labels(50).filter((l) => !taken.has(l));
    const again = await Promise.all(free.slice(0, 5).map((label) => hold(alice, eventId, [label])));
    expectNoServerErrors(again);
    expect(countStatuses(again.map((r) => r.status))).toEqual({ 201: 1, 409: 4 });
    for (const r of again.filter((r) => r.status === 409)) expectLimit(r, 10, 10);
    expect(await seatsOf(alice, eventId)).toHaveLength(10);
  });

  it('the same race split across two API instances: still exactly 10', async () => {
    const eventId = await newEvent();
    const alice = await registerCustomer(api);

    const responses = await Promise.all(
      labels(50).map((label, i) => hold(alice, eventId, [label], i % 2 === 0 ? api : twin)),
    );
    expectNoServerErrors(responses);

    expect(countStatuses(responses.map((r) => r.status))).toEqual({ 201: 10, 409: 40 });
    for (const r of responses.filter((r) => r.status === 409)) expectLimit(r, 10, 10);
    expect(await seatsOf(alice, eventId)).toHaveLength(10);
  });

  it('concurrent multi-seat holds: 10 × 3 seats → exactly 3 win (9 seats); then 1 more seat fits, 2 do not', async () => {
    const eventId = await newEvent();
    const alice = await registerCustomer(api);

    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) => hold(alice, eventId, labels(3, i * 3))),
    );
    expectNoServerErrors(responses);

    expect(countStatuses(responses.map((r) => r.status))).toEqual({ 201: 3, 409: 7 });
    for (const r of responses.filter((r) => r.status === 409)) {
      // 9 held; 3 more would make 12.
      expectLimit(r, 10, 9);
    }
    expect(await seatsOf(alice, eventId)).toHaveLength(9);

    const taken = new Set((await seatsOf(alice, eventId)).map((s) => s.label));
    const free = labels(50).filter((l) => !taken.has(l));
    const before = await eventState(eventId);
    expectLimit(await hold(alice, eventId, free.slice(0, 2)), 10, 9);
    expect(await eventState(eventId)).toEqual(before);
    expect((await hold(alice, eventId, free.slice(0, 1))).status).toBe(201);
    expectLimit(await hold(alice, eventId, free.slice(1, 2)), 10, 10);
  });

  it('best available counts too: 30 concurrent quantity-1 requests never pass 10; quantity 2 at 9 → 409 current 9', async () => {
    const eventId = await newEvent();
    const [alice, bob] = await registerCustomers(api, 2);
    const bestOne = () => api.post('/bookings', { eventId, quantity: 1 }, { token: alice.token });

    const responses = await Promise.all(Array.from({ length: 30 }, bestOne));
    expectNoServerErrors(responses);
    const won = responses.filter((r) => r.status === 201).length;
    expect(won).toBeLessThanOrEqual(10);
    for (const r of responses.filter((r) => r.status !== 201)) {
      // Losing the same best seat to a twin request is allowed; passing the cap is not.
      if (r.body.code === 'BOOKING.SEAT_UNAVAILABLE') expectProblem(r, 409);
      else expectLimit(r, 10, 10);
    }
    expect(await seatsOf(alice, eventId)).toHaveLength(won);
    // One at a time up to the cap, then refused.
    for (let i = won; i < 10; i += 1) expect((await bestOne()).status).toBe(201);
    expectLimit(await bestOne(), 10, 10);
    expect(await seatsOf(alice, eventId)).toHaveLength(10);

    await mustHold(bob, eventId, ['E1', 'E2', 'E3', 'E4', 'E5', 'E6', 'E7', 'E8', 'E9']);
    const over = await api.post('/bookings', { eventId, quantity: 2 }, { token: bob.token });
    expectLimit(over, 10, 9);
    const fits = await api.post('/bookings', { eventId, quantity: 1 }, { token: bob.token });
    expect(fits.status).toBe(201);
  });

  it('per customer and per event: a full customer does not block another customer, nor themself on another event', async () => {
    const eventId = await newEvent();
    const other = await newEvent();
    const [alice, bob] = await registerCustomers(api, 2);
    await mustHold(alice, eventId, labels(10));
    expectLimit(await hold(alice, eventId, ['C1']), 10, 10);

    expect((await hold(bob, eventId, ['C1'])).status).toBe(201);
    expect((await hold(alice, other, labels(10))).status).toBe(201);
    expectLimit(await hold(alice, other, ['C1']), 10, 10);
  });

  it('booked seats count, cancelled seats count no more', async () => {
    const eventId = await newEvent();
    const alice = await registerCustomer(api);
    const paidId = await mustHold(alice, eventId, ['A1', 'A2', 'A3', 'A4']);
    const paid = await api.post(
      `/bookings/${paidId}/payments`,
      { paymentMethod: 'pm_card_visa' },
      { token: alice.token, headers: { 'idempotency-key': randomUUID() } },
    );
    expect(paid.status).toBe(201);
    expect(paid.body.booking.status).toBe('confirmed');

    await mustHold(alice, eventId, labels(6, 10));
    expectLimit(await hold(alice, eventId, ['C1']), 10, 10);

    const cancelled = await api.delete(`/bookings/${paidId}`, { token: alice.token });
    expect(cancelled.body.status).toBe('cancelled');
    expect(await seatsOf(alice, eventId)).toHaveLength(6);
    expect((await hold(alice, eventId, ['C1', 'C2', 'C3', 'C4'])).status).toBe(201);
    expectLimit(await hold(alice, eventId, ['C5']), 10, 10);
  });

  it('expired seats count no more (cap 2, HOLD_TTL_SECONDS 1): lapsed, then swept', async () => {
    const eventId = await newEvent(shortHolds);
    const alice = await registerCustomer(shortHolds);
    await mustHold(alice, eventId, ['A1', 'A2'], shortHolds);
    expectLimit(await hold(alice, eventId, ['A3'], shortHolds), 2, 2);

    // Lapsed, not yet swept: no longer held, so no longer counted.
    await sleep(1500);
    const lapsed = await hold(alice, eventId, ['B1', 'B2'], shortHolds);
    expect({ status: lapsed.status, body: lapsed.body }).toMatchObject({ status: 201 });
    expectLimit(await hold(alice, eventId, ['B3'], shortHolds), 2, 2);

    // Lapsed again, and swept this time.
    await sleep(1500);
    await shortHolds.app.get(HoldSweeperService).sweep();
    expect(await seatsOf(alice, eventId)).toEqual([]);
    expect((await hold(alice, eventId, ['C1', 'C2'], shortHolds)).status).toBe(201);
  });

  it('the default cap is 20', async () => {
    const eventId = await newEvent(defaults);
    const alice = await registerCustomer(defaults);
    await mustHold(alice, eventId, labels(10), defaults);
    await mustHold(alice, eventId, labels(10, 10), defaults);
    expectLimit(await hold(alice, eventId, ['C1'], defaults), 20, 20);
  });
});

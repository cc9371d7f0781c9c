import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
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
import { testRedisUrl } from './support/test-env';
import { expectNoServerErrors, expectProblem } from './support/problem-assertions';

/**
 * `POST /bookings/{id}/extend`: the owner moves a held booking's expiresAt to now + HOLD_TTL_SECONDS,
 * never past createdAt + HOLD_MAX_LIFETIME_SECONDS, at most HOLD_MAX_EXTENSIONS times; otherwise
 * 409 BOOKING.CANNOT_EXTEND with `reason` max_lifetime, max_extensions or not_held.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ms = (iso: string): number => new Date(iso).getTime();

/** The apps' own sweepers stay idle: a test sweeps when it means to. */
const QUIET_SWEEPER = { SWEEP_INTERVAL_MS: '3600000' };

/** The booking fields every booking answer carries (a best-available one adds nextToEachOther). */
function core(booking: Record<string, unknown>): Record<string, unknown> {
  const { id, status, eventId, seats, amountCents, currency, expiresAt, fencingToken, createdAt } =
    booking;
  return { id, status, eventId, seats, amountCents, currency, expiresAt, fencingToken, createdAt };
}

function expectCannotExtend(response: ApiResponse, reason: string): void {
  expectProblem(response, 409, 'BOOKING.CANNOT_EXTEND');
  expect(response.body.reason).toBe(reason);
}

describe('hold extension (real PostgreSQL and Redis)', () => {
  /** HOLD_TTL_SECONDS 300, HOLD_MAX_EXTENSIONS 2, HOLD_MAX_LIFETIME_SECONDS 1800 (the defaults). */
  let api: TestApp;
  /** HOLD_MAX_EXTENSIONS 1. */
  let oneExtension: TestApp;
  /** HOLD_TTL_SECONDS 5, HOLD_MAX_LIFETIME_SECONDS 6. */
  let shortLife: TestApp;
  /** HOLD_TTL_SECONDS 1. */
  let oneSecond: TestApp;
  /** HOLD_TTL_SECONDS 2. */
  let twoSeconds: TestApp;
  let db: DataSource;
  let redis: Redis;
  let alice: Customer;
  let bob: Customer;

  beforeAll(async () => {
    api = await TestApp.start(QUIET_SWEEPER);
    oneExtension = await TestApp.start({ ...QUIET_SWEEPER, HOLD_MAX_EXTENSIONS: '1' });
    shortLife = await TestApp.start({
      ...QUIET_SWEEPER,
      HOLD_TTL_SECONDS: '5',
      HOLD_MAX_LIFETIME_SECONDS: '6',
    });
    oneSecond = await TestApp.start({ ...QUIET_SWEEPER, HOLD_TTL_SECONDS: '1' });
    twoSeconds = await TestApp.start({ ...QUIET_SWEEPER, HOLD_TTL_SECONDS: '2' });
    db = api.app.get(DataSource);
    redis = new Redis(testRedisUrl());
    [alice, bob] = await registerCustomers(api, 2);
  });

  afterAll(async () => {
    redis?.disconnect();
    for (const app of [api, oneExtension, shortLife, oneSecond, twoSeconds]) await app?.close();
  });

  async function newEvent(on: TestApp = api): Promise<string> {
    return createEvent(on, [{ name: 'Floor', rows: 2, seatsPerRow: 10, priceCents: 4000 }]);
  }

  async function hold(
    on: TestApp,
    who: Customer,
    eventId: string,
    seatIds: string[],
  ): Promise<ApiResponse> {
    const response = await on.post('/bookings', { eventId, seatIds }, { token: who.token });
    if (response.status !== 201) {
      throw new Error(`hold: ${response.status} ${JSON.stringify(response.body)}`);
    }
    return response;
  }

  const extend = (on: TestApp, who: Customer, bookingId: string) =>
    on.post(`/bookings/${bookingId}/extend`, undefined, { token: who.token });

  async function timelineTypes(bookingId: string, who = alice): Promise<string[]> {
    const response = await api.get(`/bookings/${bookingId}/events`, { token: who.token });
    expect(response.status).toBe(200);
    return response.body.map((entry: { type: string }) => entry.type);
  }

  async function seat(eventId: string, label: string) {
    const [row] = await db.query(
      `SELECT status, booking_id FROM seats WHERE event_id = $1 AND label = $2`,
      [eventId, label],
    );
    return row as { status: string; booking_id: string | null };
  }

  const lockKey = (eventId: string, label: string) => `lock:seat:{event:${eventId}}:${label}`;

  it('within the caps: 200, the same booking with expiresAt = now + HOLD_TTL_SECONDS, later than before; timeline booking.extended', async () => {
    const eventId = await newEvent();
    const held = await hold(api, alice, eventId, ['A1', 'A2']);
    await sleep(1100);

    const sent = Date.now();
    const extended = await extend(api, alice, held.body.id);
    const received = Date.now();

    expect(extended.status).toBe(200);
    expect(core(extended.body)).toEqual({
      ...core(held.body),
      expiresAt: expect.any(String),
      fencingToken: expect.stringMatching(/^\d+$/),
    });
    expect(ms(extended.body.expiresAt)).toBeGreaterThan(ms(held.body.expiresAt) + 900);
    expect(ms(extended.body.expiresAt)).toBeGreaterThanOrEqual(sent + 300_000 - 1000);
    expect(ms(extended.body.expiresAt)).toBeLessThanOrEqual(received + 300_000 + 1000);

    const read = await api.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(read.body).toMatchObject({ status: 'held', expiresAt: extended.body.expiresAt });
    expect(await timelineTypes(held.body.id)).toEqual(['booking.held', 'booking.extended']);
    expect(await seat(eventId, 'A1')).toEqual({ status: 'held', booking_id: held.body.id });
  });

  it('the seat locks in Redis are extended too: PTTL grows past what the key had left, the owner stays', async () => {
    const eventId = await newEvent();
    const held = await hold(api, alice, eventId, ['B4', 'B5']);
    await sleep(1500);
    const before = await Promise.all(['B4', 'B5'].map((l) => redis.pttl(lockKey(eventId, l))));
    for (const pttl of before) {
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(300_000 - 1400);
    }

    const extended = await extend(api, alice, held.body.id);
    expect(extended.status).toBe(200);

    for (const label of ['B4', 'B5']) {
      const pttl = await redis.pttl(lockKey(eventId, label));
      const owner = await redis.get(lockKey(eventId, label));
      expect({ label, owner }).toEqual({ label, owner: held.body.id });
      // Longer than the key had left, and long enough to cover the new expiresAt (about).
      expect(pttl).toBeGreaterThan(Math.max(...before) + 1000);
      expect(pttl).toBeGreaterThanOrEqual(ms(extended.body.expiresAt) - Date.now() - 1000);
    }
  });

  it('an extended hold really keeps its seat past the original expiry (inline expiry and sweeper both)', async () => {
    const eventId = await newEvent(twoSeconds);
    const held = await hold(twoSeconds, alice, eventId, ['A5']);
    await sleep(1000);
    const extended = await extend(twoSeconds, alice, held.body.id);
    expect(extended.status).toBe(200);
    expect(ms(extended.body.expiresAt)).toBeGreaterThan(ms(held.body.expiresAt) + 800);

    // Past the original expiry, before the new one.
    await sleep(Math.max(0, ms(held.body.expiresAt) - Date.now() + 300));
    expect(Date.now()).toBeLessThan(ms(extended.body.expiresAt) - 300);
    const stolen = await twoSeconds.post(
      '/bookings',
      { eventId, seatIds: ['A5'] },
      { token: bob.token },
    );
    expectProblem(stolen, 409, 'BOOKING.SEAT_UNAVAILABLE');
    await twoSeconds.app.get(HoldSweeperService).sweep();
    const still = await twoSeconds.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(still.body.status).toBe('held');
    expect(await seat(eventId, 'A5')).toEqual({ status: 'held', booking_id: held.body.id });

    // Past the new expiry: the seat is free for Bob, Alice's hold turns expired.
    await sleep(Math.max(0, ms(extended.body.expiresAt) - Date.now() + 300));
    const taken = await twoSeconds.post(
      '/bookings',
      { eventId, seatIds: ['A5'] },
      { token: bob.token },
    );
    expect(taken.status).toBe(201);
    const expired = await twoSeconds.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(expired.body.status).toBe('expired');
  });

  it('HOLD_MAX_EXTENSIONS=1: the second extension → 409 reason max_extensions, nothing changed', async () => {
    const eventId = await newEvent(oneExtension);
    const held = await hold(oneExtension, alice, eventId, ['A1']);

    const first = await extend(oneExtension, alice, held.body.id);
    expect(first.status).toBe(200);
    const second = await extend(oneExtension, alice, held.body.id);
    expectCannotExtend(second, 'max_extensions');

    const read = await oneExtension.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(core(read.body)).toEqual(core(first.body));
    expect(await timelineTypes(held.body.id)).toEqual(['booking.held', 'booking.extended']);
  });

  it('HOLD_TTL_SECONDS=5, HOLD_MAX_LIFETIME_SECONDS=6: the extension is capped at createdAt + 6 s (200), the next → 409 max_lifetime', async () => {
    const eventId = await newEvent(shortLife);
    const held = await hold(shortLife, alice, eventId, ['A1']);
    expect(ms(held.body.expiresAt) - ms(held.body.createdAt)).toBeCloseTo(5000, -1);
    await sleep(1500);

    // now + 5 s would be about createdAt + 6.5 s: capped.
    const capped = await extend(shortLife, alice, held.body.id);
    expect(capped.status).toBe(200);
    expect(capped.body.status).toBe('held');
    expect(
      Math.abs(ms(capped.body.expiresAt) - ms(held.body.createdAt) - 6000),
    ).toBeLessThanOrEqual(5);
    expect(ms(capped.body.expiresAt)).toBeGreaterThan(ms(held.body.expiresAt));

    // expiresAt already equals the cap: it cannot move later (one extension of two used).
    const refused = await extend(shortLife, alice, held.body.id);
    expectCannotExtend(refused, 'max_lifetime');
    const read = await shortLife.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(core(read.body)).toEqual(core(capped.body));
    expect(await timelineTypes(held.body.id)).toEqual(['booking.held', 'booking.extended']);
  });

  it('50 concurrent extensions of one booking (HOLD_MAX_EXTENSIONS=2): exactly 2 × 200, 48 × 409 max_extensions', async () => {
    const eventId = await newEvent();
    const held = await hold(api, alice, eventId, ['A7']);
    await sleep(50);

    const responses = await Promise.all(
      Array.from({ length: 50 }, () => extend(api, alice, held.body.id)),
    );
    expectNoServerErrors(responses);

    expect(countStatuses(responses.map((r) => r.status))).toEqual({ 200: 2, 409: 48 });
    for (const r of responses.filter((r) => r.status === 409)) {
      expectCannotExtend(r, 'max_extensions');
    }
    const ok = responses.filter((r) => r.status === 200);
    for (const r of ok) expect(ms(r.body.expiresAt)).toBeGreaterThan(ms(held.body.expiresAt));
    const latest = Math.max(...ok.map((r) => ms(r.body.expiresAt)));
    const read = await api.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(ms(read.body.expiresAt)).toBe(latest);
    expect(await timelineTypes(held.body.id)).toEqual([
      'booking.held',
      'booking.extended',
      'booking.extended',
    ]);
    // A third, sequentially, is refused the same way.
    expectCannotExtend(await extend(api, alice, held.body.id), 'max_extensions');
  });

  it('a released booking → 409 not_held; the seat stays free', async () => {
    const eventId = await newEvent();
    const held = await hold(api, alice, eventId, ['A3']);
    const released = await api.delete(`/bookings/${held.body.id}`, { token: alice.token });
    expect(released.body.status).toBe('released');

    expectCannotExtend(await extend(api, alice, held.body.id), 'not_held');
    const read = await api.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(core(read.body)).toEqual(core(released.body));
    expect(await seat(eventId, 'A3')).toEqual({ status: 'free', booking_id: null });
    expect(await redis.exists(lockKey(eventId, 'A3'))).toBe(0);
    expect(await timelineTypes(held.body.id)).toEqual(['booking.held', 'booking.released']);
  });

  it('a lapsed hold (HOLD_TTL_SECONDS=1, not yet swept) → 409 not_held, and is never revived', async () => {
    const eventId = await newEvent(oneSecond);
    const held = await hold(oneSecond, alice, eventId, ['A4']);
    await sleep(1500);

    expectCannotExtend(await extend(oneSecond, alice, held.body.id), 'not_held');
    const read = await oneSecond.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(['held', 'expired']).toContain(read.body.status);
    expect(read.body.expiresAt).toBe(held.body.expiresAt);

    // The sweeper expires it as any lapsed hold: it was not revived.
    await oneSecond.app.get(HoldSweeperService).sweep();
    const swept = await oneSecond.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(swept.body.status).toBe('expired');
    expect(swept.body.expiresAt).toBe(held.body.expiresAt);
    expect(await seat(eventId, 'A4')).toEqual({ status: 'free', booking_id: null });
    expect(await timelineTypes(held.body.id)).toEqual(['booking.held', 'booking.expired']);

    // Still refused once expired, and Bob can take the seat.
    expectCannotExtend(await extend(oneSecond, alice, held.body.id), 'not_held');
    const bobs = await oneSecond.post(
      '/bookings',
      { eventId, seatIds: ['A4'] },
      { token: bob.token },
    );
    expect(bobs.status).toBe(201);
  });

  it('a lapsed hold whose seat someone else took meanwhile → 409 not_held; the new holder keeps it', async () => {
    const eventId = await newEvent(oneSecond);
    const held = await hold(oneSecond, alice, eventId, ['A6']);
    await sleep(1500);
    const bobs = await hold(oneSecond, bob, eventId, ['A6']);

    expectCannotExtend(await extend(oneSecond, alice, held.body.id), 'not_held');
    const read = await oneSecond.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(read.body.status).toBe('expired');
    expect(await seat(eventId, 'A6')).toEqual({ status: 'held', booking_id: bobs.body.id });
    expect(await redis.get(lockKey(eventId, 'A6'))).toBe(bobs.body.id);
  });

  it('confirmed and cancelled bookings → 409 not_held', async () => {
    const eventId = await newEvent();
    const held = await hold(api, alice, eventId, ['B1']);
    const paid = await api.post(
      `/bookings/${held.body.id}/payments`,
      { paymentMethod: 'pm_card_visa' },
      { token: alice.token, headers: { 'idempotency-key': randomUUID() } },
    );
    expect(paid.status).toBe(201);
    expect(paid.body.booking.status).toBe('confirmed');

    expectCannotExtend(await extend(api, alice, held.body.id), 'not_held');
    expect(await seat(eventId, 'B1')).toEqual({ status: 'booked', booking_id: held.body.id });

    const cancelled = await api.delete(`/bookings/${held.body.id}`, { token: alice.token });
    expect(cancelled.body.status).toBe('cancelled');
    expectCannotExtend(await extend(api, alice, held.body.id), 'not_held');
    const read = await api.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(read.body.status).toBe('cancelled');
    expect(await seat(eventId, 'B1')).toEqual({ status: 'free', booking_id: null });
  });

  it("another customer's booking → 404, unknown id → 404, no token → 401, non-UUID id → 400 naming id; nothing changed", async () => {
    const eventId = await newEvent();
    const held = await hold(api, alice, eventId, ['B9']);

    expectProblem(await extend(api, bob, held.body.id), 404, 'BOOKING.NOT_FOUND');
    expectProblem(await extend(api, alice, randomUUID()), 404, 'BOOKING.NOT_FOUND');
    expectProblem(await api.post(`/bookings/${held.body.id}/extend`), 401, 'AUTH.UNAUTHORIZED');
    const bad = await extend(api, alice, 'not-a-uuid');
    expectProblem(bad, 400, 'REQUEST.VALIDATION_FAILED');
    expect((bad.body.errors as { field: string }[]).map((e) => e.field)).toContain('id');

    const read = await api.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(core(read.body)).toEqual(core(held.body));
    expect(await timelineTypes(held.body.id)).toEqual(['booking.held']);
    // Alice still has both her extensions.
    expect((await extend(api, alice, held.body.id)).status).toBe(200);
    expect((await extend(api, alice, held.body.id)).status).toBe(200);
  });

  it('another customer cannot extend even under load: 20 of Bob’s attempts → 404, Alice’s booking unchanged', async () => {
    const eventId = await newEvent();
    const held = await hold(api, alice, eventId, ['B2']);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => extend(api, bob, held.body.id)),
    );
    expectNoServerErrors(responses);
    expect(countStatuses(responses.map((r) => r.status))).toEqual({ 404: 20 });
    const read = await api.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(core(read.body)).toEqual(core(held.body));
    const someone = await registerCustomer(api);
    expectProblem(await extend(api, someone, held.body.id), 404, 'BOOKING.NOT_FOUND');
  });
});

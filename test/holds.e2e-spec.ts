import { DataSource } from 'typeorm';
import { HoldSweeperService } from '../apps/api/src/modules/booking/hold-sweeper.service';
import {
  countStatuses,
  createEvent,
  registerCustomer,
  registerCustomers,
} from './support/fixtures';
import { TestApp } from './support/test-app';

describe('holds (real PostgreSQL and Redis)', () => {
  let api: TestApp;
  let db: DataSource;

  beforeAll(async () => {
    api = await TestApp.start();
    db = api.app.get(DataSource);
  });

  afterAll(async () => {
    await api.close();
  });

  async function seatRows(eventId: string) {
    return db.query<{ label: string; status: string; booking_id: string | null }[]>(
      `SELECT label, status, booking_id FROM seats WHERE event_id = $1 ORDER BY position`,
      [eventId],
    );
  }

  it('300 customers racing for one seat: exactly one 201, 299 409, one held seat, one booking', async () => {
    const eventId = await createEvent(api);
    const customers = await registerCustomers(api, 300);

    const responses = await Promise.all(
      customers.map((c) => api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: c.token })),
    );

    expect(countStatuses(responses.map((r) => r.status))).toEqual({ 201: 1, 409: 299 });
    const winner = responses.find((r) => r.status === 201)!;
    expect(winner.body).toMatchObject({
      status: 'held',
      eventId,
      seats: ['A1'],
      amountCents: 5000,
    });
    expect(winner.body.fencingToken).toMatch(/^\d+$/);
    for (const loser of responses.filter((r) => r.status === 409)) {
      expect(loser.headers['content-type']).toContain('application/problem+json');
      expect(loser.body).toMatchObject({
        code: 'BOOKING.SEAT_UNAVAILABLE',
        conflictingSeats: ['A1'],
      });
    }

    const held = (await seatRows(eventId)).filter((s) => s.status !== 'free');
    expect(held).toEqual([{ label: 'A1', status: 'held', booking_id: winner.body.id }]);
    const [{ count }] = await db.query(
      `SELECT count(*)::int AS count FROM bookings WHERE event_id = $1`,
      [eventId],
    );
    expect(count).toBe(1);

    // Every loser was turned away by Redis without reaching PostgreSQL.
    const metrics = (await api.get('/metrics')).body as string;
    expect(metrics).toMatch(/^seatlock_contention_ratio 1$/m);
    expect(metrics).toMatch(/^seatlock_holds_total\{outcome="conflict_redis"\} 299$/m);
  });

  it('overlapping multi-seat holds: one wins entirely, the other gets 409 naming A3, never a partial hold', async () => {
    const [first, second] = await registerCustomers(api, 2);
    for (let round = 0; round < 50; round += 1) {
      const eventId = await createEvent(api);
      const [a, b] = await Promise.all([
        api.post('/bookings', { eventId, seatIds: ['A1', 'A2', 'A3'] }, { token: first.token }),
        api.post('/bookings', { eventId, seatIds: ['A3', 'A4'] }, { token: second.token }),
      ]);
      expect([a.status, b.status].sort()).toEqual([201, 409]);
      const [winner, loser] = a.status === 201 ? [a, b] : [b, a];
      expect(loser.body.conflictingSeats).toEqual(['A3']);

      const taken = (await seatRows(eventId)).filter((s) => s.status !== 'free');
      expect(taken.map((s) => s.label)).toEqual(winner.body.seats);
      expect(new Set(taken.map((s) => s.booking_id))).toEqual(new Set([winner.body.id]));
    }
  });

  it('release frees the seats, answers the same on repeat, and the seat can be held again', async () => {
    const eventId = await createEvent(api);
    const [alice, bob] = await registerCustomers(api, 2);
    const hold = await api.post(
      '/bookings',
      { eventId, seatIds: ['B1', 'B2'] },
      { token: alice.token },
    );
    expect(hold.status).toBe(201);

    const blocked = await api.post('/bookings', { eventId, seatIds: ['B2'] }, { token: bob.token });
    expect(blocked.status).toBe(409);

    const released = await api.delete(`/bookings/${hold.body.id}`, { token: alice.token });
    expect(released.status).toBe(200);
    expect(released.body).toMatchObject({ id: hold.body.id, status: 'released' });
    const again = await api.delete(`/bookings/${hold.body.id}`, { token: alice.token });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(released.body);

    expect((await seatRows(eventId)).every((s) => s.status === 'free')).toBe(true);
    const rehold = await api.post('/bookings', { eventId, seatIds: ['B2'] }, { token: bob.token });
    expect(rehold.status).toBe(201);
    expect(BigInt(rehold.body.fencingToken)).toBeGreaterThan(BigInt(hold.body.fencingToken));

    const timeline = await api.get(`/bookings/${hold.body.id}/events`, { token: alice.token });
    expect(timeline.body.map((e: { type: string }) => e.type)).toEqual([
      'booking.held',
      'booking.released',
    ]);
    const outbox = await db.query(
      `SELECT topic FROM outbox_messages WHERE aggregate_id = $1 ORDER BY created_at`,
      [hold.body.id],
    );
    expect(outbox.map((m: { topic: string }) => m.topic)).toEqual([
      'booking.held',
      'booking.released',
    ]);
  });

  it('lists only my bookings, newest first, paginated with X-Total-Count and Link', async () => {
    const eventId = await createEvent(api);
    const [me, other] = await registerCustomers(api, 2);
    for (const seat of ['A1', 'A2', 'A3']) {
      expect(
        (await api.post('/bookings', { eventId, seatIds: [seat] }, { token: me.token })).status,
      ).toBe(201);
    }
    await api.post('/bookings', { eventId, seatIds: ['A4'] }, { token: other.token });

    const page1 = await api.get('/bookings?limit=2', { token: me.token });
    expect(page1.status).toBe(200);
    expect(page1.headers['x-total-count']).toBe('3');
    expect(page1.body.map((b: { seats: string[] }) => b.seats[0])).toEqual(['A3', 'A2']);
    expect(page1.headers.link).toContain('offset=2');
    const page2 = await api.get('/bookings?limit=2&offset=2', { token: me.token });
    expect(page2.body.map((b: { seats: string[] }) => b.seats[0])).toEqual(['A1']);

    const theirs = await api.get(`/bookings/${page1.body[0].id}`, { token: other.token });
    expect(theirs.status).toBe(404);
  });
});

describe('hold expiry (HOLD_TTL_SECONDS=2)', () => {
  let api: TestApp;

  beforeAll(async () => {
    api = await TestApp.start({ HOLD_TTL_SECONDS: '2', SWEEP_INTERVAL_MS: '60000' });
  });

  afterAll(async () => {
    await api.close();
  });

  it('an expired hold never blocks a new one: the next hold frees it inline and the first turns expired', async () => {
    const eventId = await createEvent(api);
    const alice = await registerCustomer(api);
    const bob = await registerCustomer(api);
    const first = await api.post(
      '/bookings',
      { eventId, seatIds: ['A1', 'A2'] },
      { token: alice.token },
    );
    expect(first.status).toBe(201);
    expect(new Date(first.body.expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(2000);

    expect(
      (await api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: bob.token })).status,
    ).toBe(409);
    await new Promise((r) => setTimeout(r, 2300));

    const second = await api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: bob.token });
    expect(second.status).toBe(201);
    const expired = await api.get(`/bookings/${first.body.id}`, { token: alice.token });
    expect(expired.body.status).toBe('expired');
    const seats = await api.get(`/events/${eventId}/seats`);
    const byLabel = Object.fromEntries(
      seats.body.map((s: { label: string; status: string }) => [s.label, s.status]),
    );
    expect(byLabel).toMatchObject({ A1: 'held', A2: 'free' });
  });

  it('the sweeper turns a lapsed hold into expired and frees its seats', async () => {
    const eventId = await createEvent(api);
    const alice = await registerCustomer(api);
    const hold = await api.post('/bookings', { eventId, seatIds: ['B3'] }, { token: alice.token });
    expect(hold.status).toBe(201);
    await new Promise((r) => setTimeout(r, 2300));

    const expiredCount = await api.app.get(HoldSweeperService).sweep();
    expect(expiredCount).toBeGreaterThanOrEqual(1);

    const booking = await api.get(`/bookings/${hold.body.id}`, { token: alice.token });
    expect(booking.body.status).toBe('expired');
    const timeline = await api.get(`/bookings/${hold.body.id}/events`, { token: alice.token });
    expect(timeline.body.map((e: { type: string }) => e.type)).toEqual([
      'booking.held',
      'booking.expired',
    ]);
    const db = api.app.get(DataSource);
    const [seat] = await db.query(
      `SELECT status, booking_id FROM seats WHERE event_id = $1 AND label = 'B3'`,
      [eventId],
    );
    expect(seat).toEqual({ status: 'free', booking_id: null });
  });
});

import { DataSource } from 'typeorm';
import { countStatuses, createEvent, registerCustomers } from './support/fixtures';
import { TestApp } from './support/test-app';

/**
 * The hold is one statement (seatlock_hold): every seat and the booking, its timeline entry and its
 * outbox row, or nothing. With the lock off, PostgreSQL alone decides between hundreds of
 * overlapping multi-seat holds in flight together; a loser must leave no trace.
 */
describe('a hold is all or nothing (LOCK_MODE=off, PostgreSQL alone)', () => {
  let api: TestApp;
  let db: DataSource;

  beforeAll(async () => {
    api = await TestApp.start({ LOCK_MODE: 'off' });
    db = api.app.get(DataSource);
  });

  afterAll(async () => {
    await api.close();
  });

  /** `n` requests for 2–4 adjacent seats among the first 12 of row A, in varying orders. */
  function overlappingRequests(n: number): string[][] {
    return Array.from({ length: n }, (_, i) => {
      const size = 2 + (i % 3);
      const first = 1 + ((i * 7) % (13 - size));
      const seats = Array.from({ length: size }, (_, k) => `A${first + k}`);
      return i % 2 === 0 ? seats : seats.reverse();
    });
  }

  it('300 overlapping multi-seat holds at once: winners hold every seat they asked for, losers leave nothing behind', async () => {
    const eventId = await createEvent(api, [
      { name: 'Floor', rows: 1, seatsPerRow: 12, priceCents: 5000 },
    ]);
    const customers = await registerCustomers(api, 300);
    const asked = overlappingRequests(customers.length);

    const responses = await Promise.all(
      customers.map((customer, i) =>
        api.post('/bookings', { eventId, seatIds: asked[i] }, { token: customer.token }),
      ),
    );

    const statuses = countStatuses(responses.map((r) => r.status));
    expect(Object.keys(statuses).sort()).toEqual(['201', '409']);
    const winners = responses.filter((r) => r.status === 201).map((r) => r.body);
    expect(winners.length).toBeGreaterThan(0);
    for (const [i, response] of responses.entries()) {
      if (response.status !== 409) continue;
      expect(response.body.code).toBe('BOOKING.SEAT_UNAVAILABLE');
      for (const seat of response.body.conflictingSeats) expect(asked[i]).toContain(seat);
    }

    // No seat twice among the winners; every seat a winner asked for is held by it, with its fence.
    const wonSeats = winners.flatMap((w) => w.seats as string[]);
    expect(new Set(wonSeats).size).toBe(wonSeats.length);
    const seats = await db.query<
      { label: string; status: string; booking_id: string | null; fence: string }[]
    >(`SELECT label, status, booking_id, fence FROM seats WHERE event_id = $1`, [eventId]);
    const byLabel = new Map(seats.map((s) => [s.label, s]));
    for (const winner of winners) {
      for (const label of winner.seats as string[]) {
        expect(byLabel.get(label)).toEqual({
          label,
          status: 'held',
          booking_id: winner.id,
          fence: winner.fencingToken,
        });
      }
    }
    const heldSeats = seats.filter((s) => s.status !== 'free').map((s) => s.label);
    expect(heldSeats.sort()).toEqual([...wonSeats].sort());

    // Exactly the winners' rows exist: one booking, one timeline entry and one outbox row each.
    const [rows] = await db.query<{ bookings: number; timeline: number; outbox: number }[]>(
      `SELECT (SELECT count(*)::int FROM bookings WHERE event_id = $1) AS bookings,
              (SELECT count(*)::int FROM booking_timeline t JOIN bookings b ON b.id = t.booking_id
                WHERE b.event_id = $1) AS timeline,
              (SELECT count(*)::int FROM outbox_messages o JOIN bookings b ON b.id = o.aggregate_id
                WHERE b.event_id = $1) AS outbox`,
      [eventId],
    );
    expect(rows).toEqual({
      bookings: winners.length,
      timeline: winners.length,
      outbox: winners.length,
    });
    const orphans = await db.query(
      `SELECT count(*)::int AS n FROM outbox_messages o
       WHERE o.topic = 'booking.held' AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.id = o.aggregate_id)`,
    );
    expect(orphans).toEqual([{ n: 0 }]);
  });

  it('a hold over a seat already taken changes nothing at all, in one statement', async () => {
    const eventId = await createEvent(api);
    const [alice, bob] = await registerCustomers(api, 2);
    const first = await api.post('/bookings', { eventId, seatIds: ['B2'] }, { token: alice.token });
    expect(first.status).toBe(201);
    const before = await db.query(
      `SELECT label, status, booking_id, fence FROM seats WHERE event_id = $1 ORDER BY label`,
      [eventId],
    );

    const second = await api.post(
      '/bookings',
      { eventId, seatIds: ['B1', 'B2', 'B3'] },
      { token: bob.token },
    );

    expect(second.status).toBe(409);
    expect(second.body.conflictingSeats).toEqual(['B2']);
    const after = await db.query(
      `SELECT label, status, booking_id, fence FROM seats WHERE event_id = $1 ORDER BY label`,
      [eventId],
    );
    expect(after).toEqual(before);
    const [{ n }] = await db.query(
      `SELECT count(*)::int AS n FROM bookings WHERE customer_id = $1`,
      [bob.id],
    );
    expect(n).toBe(0);
  });
});

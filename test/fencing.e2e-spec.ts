import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createEvent, registerCustomer } from './support/fixtures';
import { TestApp } from './support/test-app';

/**
 * The stale writer, below the HTTP layer: a holder whose lease lapsed (in Redis and in PostgreSQL)
 * comes back and writes with its old fencing token after someone else took the seat. PostgreSQL
 * refuses it by the fence, whatever Redis says.
 */
describe('fencing tokens reject a stale writer', () => {
  let api: TestApp;
  let db: DataSource;

  beforeAll(async () => {
    api = await TestApp.start({ HOLD_TTL_SECONDS: '1', SWEEP_INTERVAL_MS: '100' });
    db = api.app.get(DataSource);
  });

  afterAll(async () => {
    await api.close();
  });

  async function seat(eventId: string, label: string) {
    const [row] = await db.query(
      `SELECT status, booking_id, fence FROM seats WHERE event_id = $1 AND label = $2`,
      [eventId, label],
    );
    return row as { status: string; booking_id: string | null; fence: string };
  }

  it('a lapsed holder cannot release, confirm or re-hold with its old token', async () => {
    const eventId = await createEvent(api);
    const alice = await registerCustomer(api);
    const bob = await registerCustomer(api);

    const stale = await api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: alice.token });
    expect(stale.status).toBe(201);
    const staleFence = stale.body.fencingToken as string;

    // Alice's lease lapses for real: Redis key TTL and PostgreSQL hold both pass.
    await new Promise((r) => setTimeout(r, 1300));
    const fresh = await api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: bob.token });
    expect(fresh.status).toBe(201);
    expect(BigInt(fresh.body.fencingToken)).toBeGreaterThan(BigInt(staleFence));

    // Alice's write paths resume with her old token: her release (the statement DELETE runs) finds
    // her booking ended, and the fenced seat write matches nothing.
    const [released] = await db.query(`SELECT outcome FROM seatlock_release($1, $2)`, [
      stale.body.id,
      alice.id,
    ]);
    expect(released.outcome).toBe('unchanged');
    const [, confirmed] = await db.query(
      `UPDATE seats SET status = 'booked' WHERE event_id = $1 AND label = ANY($2) AND status = 'held' AND fence = $3`,
      [eventId, ['A1'], staleFence],
    );
    expect(confirmed).toBe(0);
    expect(await seat(eventId, 'A1')).toEqual({
      status: 'held',
      booking_id: fresh.body.id,
      fence: fresh.body.fencingToken,
    });

    // Bob lets go; the seat is free, but Alice's old token is still older than the row's fence.
    expect((await api.delete(`/bookings/${fresh.body.id}`, { token: bob.token })).status).toBe(200);
    const [reheld] = await db.query(
      `SELECT outcome, newest_fence FROM seatlock_hold($1, $2, $3, $4, 5000, 'EUR', $5, 60)`,
      [randomUUID(), alice.id, eventId, ['A1'], staleFence],
    );
    expect(reheld).toEqual({ outcome: 'stale', newest_fence: fresh.body.fencingToken });
    expect(await seat(eventId, 'A1')).toEqual({
      status: 'free',
      booking_id: null,
      fence: fresh.body.fencingToken,
    });

    // Through the API, Alice's lapsed booking reads expired and releasing it changes nothing.
    const again = await api.delete(`/bookings/${stale.body.id}`, { token: alice.token });
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('expired');
  });

  it('the writer with the current token succeeds, exactly once', async () => {
    const eventId = await createEvent(api);
    const alice = await registerCustomer(api);
    const hold = await api.post(
      '/bookings',
      { eventId, seatIds: ['B1', 'B2'] },
      { token: alice.token },
    );
    expect(hold.status).toBe(201);
    // Twenty concurrent releases of the same hold, as the statement the API runs.
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () =>
        db.query(`SELECT outcome FROM seatlock_release($1, $2)`, [hold.body.id, alice.id]),
      ),
    );
    const counted = outcomes.map(([row]) => (row as { outcome: string }).outcome).sort();
    expect(counted).toEqual(['released', ...Array.from({ length: 19 }, () => 'unchanged')]);
    expect(await seat(eventId, 'B1')).toEqual({
      status: 'free',
      booking_id: null,
      fence: hold.body.fencingToken,
    });
    const timeline = await api.get(`/bookings/${hold.body.id}/events`, { token: alice.token });
    expect(timeline.body.map((entry: { type: string }) => entry.type)).toEqual([
      'booking.held',
      'booking.released',
    ]);
  });
});

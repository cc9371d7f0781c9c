import { Client } from 'pg';
import { createEvent, registerCustomer } from './support/fixtures';
import { TestApp } from './support/test-app';
import { TEST_ADMIN_TOKEN, testDatabaseUrl } from './support/test-env';

describe('catalog and customers', () => {
  let api: TestApp;

  beforeAll(async () => {
    api = await TestApp.start();
  });

  afterAll(async () => {
    await api.close();
  });

  it('letters rows across sections in order and prices seats by section', async () => {
    const eventId = await createEvent(api, [
      { name: 'Stalls', rows: 3, seatsPerRow: 4, priceCents: 5000 },
      { name: 'Balcony', rows: 2, seatsPerRow: 3, priceCents: 2500 },
    ]);
    const seats = await api.get(`/events/${eventId}/seats`);
    expect(seats.status).toBe(200);
    expect(seats.body.map((s: { label: string }) => s.label)).toEqual([
      ...['A1', 'A2', 'A3', 'A4', 'B1', 'B2', 'B3', 'B4', 'C1', 'C2', 'C3', 'C4'],
      ...['D1', 'D2', 'D3', 'E1', 'E2', 'E3'],
    ]);
    expect(seats.body[0]).toEqual({
      label: 'A1',
      section: 'Stalls',
      priceCents: 5000,
      currency: 'EUR',
      status: 'free',
    });
    expect(seats.body[12]).toEqual({
      label: 'D1',
      section: 'Balcony',
      priceCents: 2500,
      currency: 'EUR',
      status: 'free',
    });
  });

  it('continues past row Z with AA, AB and accepts exactly 10,000 seats', async () => {
    const eventId = await createEvent(api, [
      { name: 'Arena', rows: 100, seatsPerRow: 100, priceCents: 1000 },
    ]);
    const event = await api.get(`/events/${eventId}`);
    expect(event.body.seatCounts).toEqual({ total: 10_000, free: 10_000, held: 0, booked: 0 });
    const labels = new Set(
      (await api.get(`/events/${eventId}/seats`)).body.map((s: { label: string }) => s.label),
    );
    expect(labels.size).toBe(10_000);
    for (const label of ['Z100', 'AA1', 'AB1', 'CV100']) expect(labels.has(label)).toBe(true);
  });

  it('shows a hold in the counts and seat map, never who holds it', async () => {
    const eventId = await createEvent(api);
    const alice = await registerCustomer(api);
    const hold = await api.post(
      '/bookings',
      { eventId, seatIds: ['A2', 'A3'] },
      { token: alice.token },
    );
    expect(hold.status).toBe(201);

    const event = await api.get(`/events/${eventId}`);
    expect(event.body.seatCounts).toEqual({ total: 10, free: 8, held: 2, booked: 0 });
    const seats = await api.get(`/events/${eventId}/seats`);
    const a2 = seats.body.find((s: { label: string }) => s.label === 'A2');
    expect(a2).toEqual({
      label: 'A2',
      section: 'Floor',
      priceCents: 5000,
      currency: 'EUR',
      status: 'held',
    });
    expect(JSON.stringify(seats.body)).not.toContain(alice.id);
    expect(JSON.stringify(seats.body)).not.toContain(hold.body.id);
  });

  it('lists every seat in position order with its own status: free, held, booked, and a lapsed hold as free', async () => {
    const eventId = await createEvent(api, [
      { name: 'Stalls', rows: 2, seatsPerRow: 3, priceCents: 5000 },
      { name: 'Balcony', rows: 1, seatsPerRow: 2, priceCents: 2500 },
    ]);
    const alice = await registerCustomer(api);
    for (const seatIds of [['A2'], ['B1', 'C2'], ['B3']]) {
      const hold = await api.post('/bookings', { eventId, seatIds }, { token: alice.token });
      expect(hold.status).toBe(201);
    }
    // A booked seat and a hold past its TTL that the sweeper has not reached yet, written as the
    // payment and the clock would leave them.
    const db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
    try {
      await db.query(
        `UPDATE seats SET status = 'booked', held_until = NULL WHERE event_id = $1 AND label = 'B3'`,
        [eventId],
      );
      await db.query(
        `UPDATE seats SET held_until = now() - interval '1 second' WHERE event_id = $1 AND label = 'A2'`,
        [eventId],
      );
    } finally {
      await db.end();
    }

    const seats = await api.get(`/events/${eventId.toUpperCase()}/seats`);
    expect(seats.status).toBe(200);
    expect(
      seats.body.map((s: { label: string; status: string }) => `${s.label}:${s.status}`),
    ).toEqual([
      ...['A1:free', 'A2:free', 'A3:free', 'B1:held', 'B2:free', 'B3:booked'],
      ...['C1:free', 'C2:held'],
    ]);
    expect(seats.body[7]).toEqual({
      label: 'C2',
      section: 'Balcony',
      priceCents: 2500,
      currency: 'EUR',
      status: 'held',
    });
  });

  it('pages events with X-Total-Count and Link', async () => {
    for (let i = 0; i < 3; i += 1) await createEvent(api);
    const first = await api.get('/events?limit=2');
    expect(first.status).toBe(200);
    const total = Number(first.headers['x-total-count']);
    expect(total).toBeGreaterThanOrEqual(3);
    expect(first.body).toHaveLength(2);
    expect(first.headers.link).toContain('rel="next"');
    const last = await api.get(`/events?limit=2&offset=${total - 1}`);
    expect(last.body).toHaveLength(1);
    expect(last.headers.link).toContain('rel="prev"');
    expect(last.headers.link).not.toContain('rel="next"');
  });

  it('admin routes need the admin token: none 401, a customer token 403', async () => {
    const body = {
      name: 'X',
      startsAt: '2027-01-01T00:00:00Z',
      venue: 'Y',
      currency: 'EUR',
      sections: [{ name: 'S', rows: 1, seatsPerRow: 1, priceCents: 1 }],
    };
    const customer = await registerCustomer(api);
    expect((await api.post('/admin/events', body)).status).toBe(401);
    expect((await api.post('/admin/events', body, { token: customer.token })).status).toBe(403);
    expect((await api.post('/admin/events', body, { token: TEST_ADMIN_TOKEN })).status).toBe(201);
  });

  it('registers a customer once per email, whatever its case; the token works at once', async () => {
    const email = `Ada.${Date.now()}@Example.test`;
    const created = await api.post('/customers', { email, name: 'Ada' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(String),
      email,
      name: 'Ada',
      token: expect.stringMatching(/^slk_/),
    });
    const again = await api.post('/customers', { email: email.toLowerCase(), name: 'Other' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('CUSTOMER.EMAIL_TAKEN');
    const mine = await api.get('/bookings', { token: created.body.token });
    expect(mine.status).toBe(200);
    expect(mine.body).toEqual([]);
  });
});

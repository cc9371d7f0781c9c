import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { PgCountingProxy } from './support/pg-counting-proxy';
import { createEvent, registerCustomer } from './support/fixtures';
import { TestApp } from './support/test-app';
import { testDatabaseUrl } from './support/test-env';

/**
 * What a hold costs PostgreSQL, counted on the wire by a proxy between the API and the database:
 * one statement for the hold itself and, once the dispatcher has fanned it out (claim, then one
 * statement writing the in-app notification and marking it sent), three in all.
 */
describe('statements per hold on the wire', () => {
  let proxy: PgCountingProxy;
  let api: TestApp;
  let db: Client;

  beforeAll(async () => {
    const url = new URL(testDatabaseUrl());
    proxy = await PgCountingProxy.start(url.hostname, Number(url.port || 5432));
    // Background jobs slowed down: only the hold and its fan-out may talk to PostgreSQL.
    api = await TestApp.start({
      DATABASE_URL: proxy.urlFor(testDatabaseUrl()),
      NOTIFY_POLL_MS: '3600000',
      SWEEP_INTERVAL_MS: '3600000',
      RECONCILE_INTERVAL_MS: '3600000',
    });
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
  });

  afterAll(async () => {
    await api.close();
    await db.end();
    await proxy.stop();
  });

  async function pendingOutbox(): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'pending'`,
    );
    return rows[0].n;
  }

  async function untilDispatched(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while ((await pendingOutbox()) > 0) {
      if (Date.now() > deadline) throw new Error('the outbox was not dispatched within 10 s');
      await sleep(20);
    }
    await sleep(200); // nothing else may follow
  }

  it('an isolated hold costs 3 statements with its fan-out: the hold, the claim, the fan-out', async () => {
    const eventId = await createEvent(api);
    const customer = await registerCustomer(api);
    // The customer's token and the seat map cached, as for a customer who was already browsing.
    expect((await api.get('/bookings', { token: customer.token })).status).toBe(200);
    expect((await api.get(`/events/${eventId}/seats`)).status).toBe(200);
    await untilDispatched();

    const results: { statements: number; roundTrips: number }[] = [];
    for (const label of ['A1', 'A2', 'A3']) {
      const before = proxy.counts();
      const held = await api.post(
        '/bookings',
        { eventId, seatIds: [label] },
        { token: customer.token },
      );
      expect(held.status).toBe(201);
      await untilDispatched();
      const after = proxy.counts();
      results.push({
        statements: after.statements - before.statements,
        roundTrips: after.roundTrips - before.roundTrips,
      });
    }
    expect(results).toEqual([
      { statements: 3, roundTrips: 3 },
      { statements: 3, roundTrips: 3 },
      { statements: 3, roundTrips: 3 },
    ]);
    const [{ n }] = (
      await db.query(
        `SELECT count(*)::int AS n FROM notifications WHERE customer_id = $1 AND type = 'booking.held'`,
        [customer.id],
      )
    ).rows;
    expect(n).toBe(3);
  });
});

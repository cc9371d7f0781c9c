import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { PgCountingProxy } from './support/pg-counting-proxy';
import { createEvent, registerCustomer } from './support/fixtures';
import { PaymentStack } from './support/payment-stack';
import { TestApp } from './support/test-app';
import { testDatabaseUrl } from './support/test-env';

/** Background jobs slowed down: only the requests and their fan-out may talk to PostgreSQL. */
const QUIET_JOBS = {
  NOTIFY_POLL_MS: '3600000',
  SWEEP_INTERVAL_MS: '3600000',
  RECONCILE_INTERVAL_MS: '3600000',
  // Nobody subscribes to a seat stream here; its idle drain (one statement per 5 s for every
  // change since) is a background job like the others.
  STREAM_IDLE_DRAIN_MS: '3600000',
};

async function pendingOutbox(db: Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'pending'`,
  );
  return rows[0].n;
}

async function untilDispatched(db: Client): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await pendingOutbox(db)) > 0) {
    if (Date.now() > deadline) throw new Error('the outbox was not dispatched within 10 s');
    await sleep(20);
  }
  await sleep(200); // nothing else may follow
}

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
    api = await TestApp.start({ DATABASE_URL: proxy.urlFor(testDatabaseUrl()), ...QUIET_JOBS });
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
  });

  afterAll(async () => {
    await api.close();
    await db.end();
    await proxy.stop();
  });

  it('an isolated hold costs 3 statements with its fan-out: the hold, the claim, the fan-out', async () => {
    const eventId = await createEvent(api);
    const customer = await registerCustomer(api);
    // The customer's token and the seat map cached, as for a customer who was already browsing.
    expect((await api.get('/bookings', { token: customer.token })).status).toBe(200);
    expect((await api.get(`/events/${eventId}/seats`)).status).toBe(200);
    await untilDispatched(db);

    const results: { statements: number; roundTrips: number }[] = [];
    for (const label of ['A1', 'A2', 'A3']) {
      const before = proxy.counts();
      const held = await api.post(
        '/bookings',
        { eventId, seatIds: [label] },
        { token: customer.token },
      );
      expect(held.status).toBe(201);
      await untilDispatched(db);
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

/** Which statement this is: the SQL function it calls, or the table it writes. */
function kind(sql: string): string {
  return (
    /seatlock_\w+|UPDATE payments|outbox_messages|BEGIN|COMMIT/i.exec(sql)?.[0] ?? sql.slice(0, 60)
  );
}

/**
 * What a paid booking costs PostgreSQL on the request path, every statement named: the hold, then
 * the payment's three (start: idempotency claim + payment row; the fenced confirm with the
 * authorization; the capture with the stored answer), each its own implicit transaction. The
 * outbox fan-out runs beside them and is counted apart.
 */
describe('statements per paid booking on the wire', () => {
  let proxy: PgCountingProxy;
  let stack: PaymentStack;
  let db: Client;

  beforeAll(async () => {
    const url = new URL(testDatabaseUrl());
    proxy = await PgCountingProxy.start(url.hostname, Number(url.port || 5432), {
      logStatements: true,
    });
    stack = await PaymentStack.start({
      DATABASE_URL: proxy.urlFor(testDatabaseUrl()),
      ...QUIET_JOBS,
    });
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
  });

  afterAll(async () => {
    await stack.close();
    await db.end();
    await proxy.stop();
  });

  it('hold → pay (captured): 4 transactions of one statement each; the answer replays from the last', async () => {
    const eventId = await createEvent(stack.api);
    const customer = await registerCustomer(stack.api);
    expect((await stack.api.get('/bookings', { token: customer.token })).status).toBe(200);
    expect((await stack.api.get(`/events/${eventId}/seats`)).status).toBe(200);
    await untilDispatched(db);

    const paidBookings: string[] = [];
    for (const label of ['A1', 'A2', 'A3']) {
      const from = proxy.statementLog().length;
      const bookingId = await stack.hold(customer, eventId, [label]);
      paidBookings.push(bookingId);
      const key = `flow-${label}-${bookingId}`;
      const paid = await stack.pay(customer, bookingId, 'pm_card_visa', key);
      expect(paid.status).toBe(201);
      expect(paid.body.payment.status).toBe('captured');
      expect(paid.body.booking.status).toBe('confirmed');
      await untilDispatched(db);
      const kinds = proxy.statementLog(from).map(kind);

      expect(kinds.filter((k) => k !== 'outbox_messages')).toEqual([
        'seatlock_hold',
        'seatlock_payment_start',
        'seatlock_payment_confirm',
        'UPDATE payments',
      ]);
      // The fan-out of booking.held and booking.confirmed: a claim and one write per batch.
      expect(kinds.filter((k) => k === 'outbox_messages').length).toBeLessThanOrEqual(4);

      // The answer was stored by the capture's statement: the replay costs one statement, no write.
      const replayFrom = proxy.statementLog().length;
      const replay = await stack.pay(customer, bookingId, 'pm_card_visa', key);
      expect(replay.status).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(JSON.stringify(replay.body)).toBe(JSON.stringify(paid.body));
      expect(proxy.statementLog(replayFrom).map(kind)).toEqual(['seatlock_payment_start']);
    }
    expect(await stack.ledgerViolations(paidBookings)).toEqual([]);
  });
});

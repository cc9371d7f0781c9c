import { setTimeout as sleep } from 'node:timers/promises';
import { createEvent, registerCustomers } from './support/fixtures';
import { freshDatabase } from './support/global-setup';
import { PgCountingProxy } from './support/pg-counting-proxy';
import { TestApp } from './support/test-app';
import { testDatabaseUrl } from './support/test-env';

/**
 * Background work is woken by work, not by polling (issue 23): an idle instance sends PostgreSQL
 * nothing, yet a lapsed hold is swept when it lapses and its notifications go out. The intervals
 * are the defaults (sweeper 1 s, reconciler 5 s); before, they polled every second.
 */
describe('background work at idle', () => {
  let proxy: PgCountingProxy;
  let api: TestApp;
  const statementsSince = (from: number) => proxy.statementLog(from);
  // A database of its own: what earlier test files left (retries, unsettled payments) is real
  // work, due at its own times.
  const database = new URL(testDatabaseUrl());
  database.pathname = `${database.pathname}_idle`;

  beforeAll(async () => {
    await freshDatabase(database.toString());
    const url = new URL(testDatabaseUrl());
    proxy = await PgCountingProxy.start(url.hostname, Number(url.port || 5432), {
      logStatements: true,
    });
    api = await TestApp.start({
      DATABASE_URL: proxy.urlFor(database.toString()),
      HOLD_TTL_SECONDS: '2',
      SWEEP_INTERVAL_MS: '1000',
      RECONCILE_INTERVAL_MS: '5000',
      // The stream's after-work (a drain this long after a change nobody watches) ends before we count.
      STREAM_IDLE_DRAIN_MS: '500',
    });
  });

  afterAll(async () => {
    await api?.close();
    await proxy?.stop();
  });

  it('sends no statement while nothing happens', async () => {
    await sleep(1500);
    const quiet = proxy.statementLog().length;
    // A poll of the sweeper, the dispatcher and the delivery worker would have sent 12 in 4 s.
    await sleep(4000);
    expect(statementsSince(quiet)).toEqual([]);
  });

  it('sweeps a hold when it lapses, sends its notification, then is quiet again', async () => {
    const eventId = await createEvent(api, [
      { name: 'Stalls', rows: 1, seatsPerRow: 4, priceCents: 2000 },
    ]);
    const [alice] = await registerCustomers(api, 1);
    const held = await api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: alice.token });
    expect(held.status).toBe(201);
    const lapsesAt = Date.parse(held.body.expiresAt);

    // Nobody asks about the booking: only the sweeper can expire it.
    await sleep(Math.max(0, lapsesAt - Date.now()) + 1200);
    const after = await api.get(`/bookings/${held.body.id}`, { token: alice.token });
    expect(after.body.status).toBe('expired');
    const inbox = await api.get('/notifications?limit=100', { token: alice.token });
    expect(inbox.status).toBe(200);
    expect(inbox.body.map((n: { type: string }) => n.type)).toContain('booking.expired');

    await sleep(1500);
    const quiet = proxy.statementLog().length;
    await sleep(3000);
    expect(statementsSince(quiet)).toEqual([]);
  });
});

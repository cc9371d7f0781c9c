import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { request } from 'undici';
import { checkLedger } from '../apps/api/src/ledger/ledger-check';
import { BuiltApp } from './support/built-app';
import { GatewayProcess } from './support/gateway-process';
import { eventually } from './support/payment-stack';
import { freePort } from './support/redis-server';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './support/test-env';

const SECRET = 'whsec_e2e_crash_0123456789';

/**
 * The API process is SIGKILLed while the gateway is authorizing (pm_card_slow): the gateway
 * authorizes after the API died, so the money is reserved and nothing is confirmed. A new API
 * process's reconciler must finish it: confirmed if the hold still stands with the same fence,
 * voided if it lapsed meanwhile.
 */
describe('API killed between authorize and confirm (real processes)', () => {
  let gateway: GatewayProcess;
  let db: Client;
  let apiPort: number;
  let api: BuiltApp | undefined;

  const apiEnv = (holdTtlSeconds: number) => ({
    DATABASE_URL: testDatabaseUrl(),
    REDIS_URL: testRedisUrl(),
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    MIGRATIONS_RUN: 'false',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    GATEWAY_URL: gateway.url,
    GATEWAY_WEBHOOK_SECRET: SECRET,
    // The reconciler leaves a step alone for GATEWAY_TIMEOUT_MS + 1 s (it may still be running).
    GATEWAY_TIMEOUT_MS: '3000',
    RECONCILE_INTERVAL_MS: '300',
    SWEEP_INTERVAL_MS: '200',
    HOLD_TTL_SECONDS: String(holdTtlSeconds),
  });

  async function call(method: string, path: string, body?: unknown, token?: string, key?: string) {
    const response = await request(`${api!.url}${path}`, {
      method: method as 'GET',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(key ? { 'idempotency-key': key } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return {
      status: response.statusCode,
      body: (await response.body.json().catch(() => null)) as any,
    };
  }

  async function setUp(holdTtlSeconds: number) {
    api = await BuiltApp.start(apiEnv(holdTtlSeconds), apiPort);
    const event = await call(
      'POST',
      '/admin/events',
      {
        name: 'Crash test',
        startsAt: '2027-06-01T19:30:00Z',
        venue: 'Hall',
        currency: 'EUR',
        sections: [{ name: 'Floor', rows: 1, seatsPerRow: 4, priceCents: 3000 }],
      },
      TEST_ADMIN_TOKEN,
    );
    const customer = await call('POST', '/customers', {
      email: `crash-${randomUUID()}@example.test`,
      name: 'Crash',
    });
    const hold = await call(
      'POST',
      '/bookings',
      { eventId: event.body.id, seatIds: ['A1'] },
      customer.body.token,
    );
    expect(hold.status).toBe(201);
    return { token: customer.body.token as string, bookingId: hold.body.id as string };
  }

  /** Starts a slow payment, and SIGKILLs the API once the gateway has the request. */
  async function payAndCrash(token: string, bookingId: string) {
    const paying = call(
      'POST',
      `/bookings/${bookingId}/payments`,
      { paymentMethod: 'pm_card_slow' },
      token,
      randomUUID(),
    ).catch((error: unknown) => error);
    await eventually('the payment row', async () => {
      const { rows } = await db.query(`SELECT id FROM payments WHERE booking_id = $1`, [bookingId]);
      return rows.length > 0;
    });
    await sleep(200);
    await api!.kill();
    await paying;
    // The gateway finishes the authorization the dead API asked for.
    const intent = await eventually('the authorization at the gateway', async () => {
      const response = await request(`${gateway.url}/v1/payment_intents?limit=100`);
      const page = (await response.body.json()) as { data: any[] };
      return page.data.find(
        (i) => i.metadata?.bookingId === bookingId && i.status === 'requires_capture',
      );
    });
    const { rows } = await db.query(
      `SELECT p.status AS payment, p.next_action, b.status AS booking
       FROM payments p JOIN bookings b ON b.id = p.booking_id WHERE p.booking_id = $1`,
      [bookingId],
    );
    // The crash window: money reserved at the gateway, nothing decided here.
    expect(rows).toEqual([{ payment: 'pending', next_action: 'authorize', booking: 'held' }]);
    return intent;
  }

  const ledger = (bookingId: string) =>
    checkLedger({
      databaseUrl: testDatabaseUrl(),
      gatewayUrl: gateway.url,
      bookingIds: [bookingId],
      settleMs: 10_000,
    });

  beforeAll(async () => {
    apiPort = await freePort();
    gateway = await GatewayProcess.start({
      env: {
        GATEWAY_SLOW_MS: '1500',
        GATEWAY_WEBHOOK_URL: `http://127.0.0.1:${apiPort}/payments/webhook`,
        GATEWAY_WEBHOOK_SECRET: SECRET,
      },
    });
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
  });

  afterEach(async () => {
    await api?.stop();
    api = undefined;
  });

  afterAll(async () => {
    await db.end();
    await gateway.stop();
  });

  it('the hold still stands → after restart the reconciler confirms and captures the same authorization', async () => {
    const { token, bookingId } = await setUp(120);
    const intent = await payAndCrash(token, bookingId);

    api = await BuiltApp.start(apiEnv(120), apiPort);
    // The capture follows the confirm's commit: wait for the payment, not just the booking.
    const payments = await eventually('the payment captured by the reconciler', async () => {
      const response = await call('GET', `/bookings/${bookingId}/payments`, undefined, token);
      return response.body[0]?.status === 'captured' && response.body;
    });

    expect(payments).toHaveLength(1);
    expect(payments[0]).toMatchObject({ status: 'captured', gatewayIntentId: intent.id });
    const booking = await call('GET', `/bookings/${bookingId}`, undefined, token);
    expect(booking.body.status).toBe('confirmed');
    const report = await ledger(bookingId);
    expect(report.violations).toEqual([]);
    expect(report.capturedIntents).toBe(1);
  });

  it('the hold lapsed while the API was down → after restart the reconciler voids the authorization', async () => {
    const { token, bookingId } = await setUp(3);
    const intent = await payAndCrash(token, bookingId);
    await sleep(3000);

    api = await BuiltApp.start(apiEnv(3), apiPort);
    const payment = await eventually('the payment voided by the reconciler', async () => {
      const response = await call('GET', `/bookings/${bookingId}/payments`, undefined, token);
      return response.body[0]?.status === 'voided' && response.body[0];
    });

    expect(payment).toMatchObject({ gatewayIntentId: intent.id, failureCode: 'seat_lost' });
    const booking = await call('GET', `/bookings/${bookingId}`, undefined, token);
    expect(booking.body.status).toBe('expired');
    expect((await ledger(bookingId)).violations).toEqual([]);
  });
});

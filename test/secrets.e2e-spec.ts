import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { signWebhook } from '../apps/api/src/common/http/webhook-signature';
import { PUBLISHED_SECRETS } from '../apps/api/src/config/run-secrets';
import { runToExit } from './support/built-app';
import { createEvent, registerCustomer } from './support/fixtures';
import { GatewayProcess } from './support/gateway-process';
import { TestApp } from './support/test-app';
import { testDatabaseUrl, testRedisUrl } from './support/test-env';

/**
 * The attack of issue 21: pay with an asynchronous card (the payment waits, `pending`, with its
 * intent id in the answer), then post the gateway's "succeeded" event yourself, signed with a
 * secret the repository once published as a default. Before: 200, the booking confirmed, the
 * payment captured, and the gateway's intent still `processing` with nothing received.
 */
describe('no published secrets: a forged gateway webhook books nothing', () => {
  let gateway: GatewayProcess;
  const apps: TestApp[] = [];

  beforeAll(async () => {
    // The intent stays `processing` for the whole test: nobody has paid.
    gateway = await GatewayProcess.start({ env: { GATEWAY_ASYNC_DELAY_MS: '3600000' } });
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await gateway?.stop();
  });

  async function pendingPayment(api: TestApp) {
    const eventId = await createEvent(api);
    const customer = await registerCustomer(api);
    const held = await api.post(
      '/bookings',
      { eventId, seatIds: ['A1'] },
      { token: customer.token },
    );
    expect(held.status).toBe(201);
    const paid = await api.post(
      `/bookings/${held.body.id}/payments`,
      { paymentMethod: 'pm_card_async' },
      { token: customer.token, headers: { 'idempotency-key': randomUUID() } },
    );
    expect(paid.status).toBe(201);
    expect(paid.body.payment.status).toBe('pending');
    return { bookingId: held.body.id as string, customer, payment: paid.body.payment };
  }

  function forgedSuccess(payment: { id: string; gatewayIntentId: string }, bookingId: string) {
    return JSON.stringify({
      id: `evt_${randomUUID()}`,
      object: 'event',
      type: 'payment_intent.succeeded',
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          id: payment.gatewayIntentId,
          object: 'payment_intent',
          status: 'succeeded',
          amount_received: 5000,
          metadata: { bookingId, paymentId: payment.id },
        },
      },
    });
  }

  const postWebhook = (api: TestApp, body: string, secret: string) =>
    api.request('POST', '/payments/webhook', undefined, {
      raw: body,
      headers: {
        'content-type': 'application/json',
        'gateway-signature': signWebhook(secret, body),
      },
    });

  async function expectNothingPaid(
    api: TestApp,
    { bookingId, customer, payment }: Awaited<ReturnType<typeof pendingPayment>>,
  ) {
    const booking = await api.get(`/bookings/${bookingId}`, { token: customer.token });
    expect(booking.body.status).toBe('held');
    const payments = await api.get(`/bookings/${bookingId}/payments`, { token: customer.token });
    expect(payments.body).toEqual([expect.objectContaining({ status: 'pending' })]);
    const intent = await request(`${gateway.url}/v1/payment_intents/${payment.gatewayIntentId}`);
    expect(await intent.body.json()).toMatchObject({ status: 'processing', amount_received: 0 });
  }

  it('with no secret configured: every value the repository published is refused (400)', async () => {
    // No GATEWAY_WEBHOOK_SECRET: the API makes one up for the run.
    const api = await TestApp.start({ GATEWAY_URL: gateway.url });
    apps.push(api);
    const victim = await pendingPayment(api);
    const forged = forgedSuccess(victim.payment, victim.bookingId);

    for (const secret of PUBLISHED_SECRETS) {
      const response = await postWebhook(api, forged, secret);
      expect({ secret, status: response.status, code: response.body.code }).toEqual({
        secret,
        status: 400,
        code: 'WEBHOOK.INVALID_SIGNATURE',
      });
    }
    await expectNothingPaid(api, victim);
  });

  it('configured with a published value (a development start): signed right, still nothing paid', async () => {
    // Outside production a published value still starts (with a warning in the docs); even then the
    // gateway's word is asked before a booking is confirmed.
    const api = await TestApp.start({
      GATEWAY_URL: gateway.url,
      GATEWAY_WEBHOOK_SECRET: 'whsec_dev_only_change_me',
    });
    apps.push(api);
    const victim = await pendingPayment(api);

    const response = await postWebhook(
      api,
      forgedSuccess(victim.payment, victim.bookingId),
      'whsec_dev_only_change_me',
    );

    // Signed right, so acknowledged — but the gateway says `processing`: nothing changes.
    expect(response.status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    await expectNothingPaid(api, victim);
  });

  it('a leaked secret still cannot confirm an unpaid booking: the intent is read back first', async () => {
    const secret = `whsec_${randomUUID()}${randomUUID()}`;
    const api = await TestApp.start({ GATEWAY_URL: gateway.url, GATEWAY_WEBHOOK_SECRET: secret });
    apps.push(api);
    const victim = await pendingPayment(api);
    // An intent of the attacker's own, for the same amount, named as the victim's payment.
    const own = forgedSuccess(
      { id: victim.payment.id, gatewayIntentId: 'pi_does_not_exist' },
      victim.bookingId,
    );

    for (const body of [forgedSuccess(victim.payment, victim.bookingId), own]) {
      expect((await postWebhook(api, body, secret)).status).toBe(200);
    }

    await new Promise((r) => setTimeout(r, 300));
    await expectNothingPaid(api, victim);
  });
});

describe('production refuses to start with a weak secret, in one sentence', () => {
  const strong = () => `${randomUUID()}${randomUUID()}`.replace(/-/g, '');
  const base = {
    NODE_ENV: 'production',
    DATABASE_URL: testDatabaseUrl(),
    REDIS_URL: testRedisUrl(),
    PORT: '0',
    HOST: '127.0.0.1',
  };

  type Secrets = { ADMIN_TOKEN?: string; GATEWAY_WEBHOOK_SECRET?: string };
  const cases: [name: string, secrets: Secrets, reason: RegExp][] = [
    ['both unset', { ADMIN_TOKEN: undefined, GATEWAY_WEBHOOK_SECRET: undefined }, /is unset/],
    ['a short admin token', { ADMIN_TOKEN: 'x'.repeat(20) }, /ADMIN_TOKEN is shorter than 32/],
    ...PUBLISHED_SECRETS.map((value): [string, Secrets, RegExp] => [
      `the published ${value}`,
      { GATEWAY_WEBHOOK_SECRET: value },
      /GATEWAY_WEBHOOK_SECRET is a value published in the repository/,
    ]),
    [
      'a long placeholder',
      { ADMIN_TOKEN: `change-me-${'x'.repeat(40)}` },
      /ADMIN_TOKEN is a value published/,
    ],
  ];

  it.each(cases)('%s', async (_name, secrets, reason) => {
    const env = {
      ...base,
      ADMIN_TOKEN: strong(),
      GATEWAY_WEBHOOK_SECRET: strong(),
      ...secrets,
    };
    const { code, output } = await runToExit(env);
    expect(code).toBe(1);
    expect(output).toMatch(reason);
    expect(output.trim().split('\n')).toHaveLength(1);
    for (const value of [env.ADMIN_TOKEN, env.GATEWAY_WEBHOOK_SECRET]) {
      if (value) expect(output).not.toContain(value);
    }
  });
});

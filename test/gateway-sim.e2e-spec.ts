import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { countStatuses } from './support/fixtures';
import { PgCountingProxy } from './support/pg-counting-proxy';
import { testDatabaseUrl } from './support/test-env';
import { TestGateway } from './support/test-gateway';
import { WebhookReceiver } from './support/webhook-receiver';

const SECRET = 'whsec_e2e_secret_0123456789';

describe('gateway simulator (real PostgreSQL, webhooks to a real HTTP receiver)', () => {
  let receiver: WebhookReceiver;
  let db: Client;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start(SECRET);
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
  });

  afterAll(async () => {
    await db.end();
    await receiver.close();
  });

  function startGateway(env: Record<string, string> = {}): Promise<TestGateway> {
    return TestGateway.start({
      GATEWAY_WEBHOOK_URL: receiver.url,
      GATEWAY_WEBHOOK_SECRET: SECRET,
      ...env,
    });
  }

  function intentBody(paymentMethod: string, extra: Record<string, unknown> = {}) {
    return {
      amount: 1000,
      currency: 'EUR',
      payment_method: paymentMethod,
      capture_method: 'manual',
      metadata: { test: randomUUID() },
      ...extra,
    };
  }

  async function intentRows(testId: string): Promise<number> {
    const { rows } = await db.query(
      `SELECT count(*)::int AS count FROM gateway_sim.payment_intents WHERE metadata->>'test' = $1`,
      [testId],
    );
    return rows[0].count;
  }

  describe('with one instance', () => {
    let gateway: TestGateway;

    beforeAll(async () => {
      // Long enough that a test can cancel a processing intent before it completes, even when slow.
      gateway = await startGateway({ GATEWAY_ASYNC_DELAY_MS: '1000' });
    });

    afterAll(async () => {
      await gateway.close();
    });

    it('answers /health', async () => {
      expect((await gateway.get('/health')).status).toBe(200);
    });

    it('authorize → capture → partial refund → refund the rest → over-refund 400, with signed webhooks', async () => {
      const created = await gateway.post('/v1/payment_intents', intentBody('pm_card_visa'));
      expect(created.status).toBe(200);
      const id = created.body.id;
      expect(id).toMatch(/^pi_\w{24}$/);
      expect(created.body).toMatchObject({
        object: 'payment_intent',
        amount: 1000,
        amount_capturable: 1000,
        amount_received: 0,
        amount_refunded: 0,
        currency: 'eur',
        status: 'requires_capture',
        payment_method: 'pm_card_visa',
        capture_method: 'manual',
        last_payment_error: null,
      });
      expect(typeof created.body.created).toBe('number');

      const captured = await gateway.post(`/v1/payment_intents/${id}/capture`);
      expect(captured.status).toBe(200);
      expect(captured.body).toMatchObject({
        status: 'succeeded',
        amount_received: 1000,
        amount_capturable: 0,
      });

      const again = await gateway.post(`/v1/payment_intents/${id}/capture`);
      expect(again.status).toBe(400);
      expect(again.body.error).toMatchObject({
        type: 'invalid_request_error',
        code: 'payment_intent_unexpected_state',
      });
      expect(again.body.error.message).toContain('succeeded');

      const partial = await gateway.post('/v1/refunds', { payment_intent: id, amount: 300 });
      expect(partial.status).toBe(200);
      expect(partial.body).toMatchObject({
        object: 'refund',
        amount: 300,
        payment_intent: id,
        status: 'succeeded',
      });
      expect(partial.body.id).toMatch(/^re_/);

      const tooMuch = await gateway.post('/v1/refunds', { payment_intent: id, amount: 701 });
      expect(tooMuch.status).toBe(400);
      expect(tooMuch.body.error.code).toBe('amount_too_large');

      const rest = await gateway.post('/v1/refunds', { payment_intent: id });
      expect(rest.status).toBe(200);
      expect(rest.body.amount).toBe(700);

      const overRefund = await gateway.post('/v1/refunds', { payment_intent: id, amount: 1 });
      expect(overRefund.status).toBe(400);
      expect(overRefund.body.error).toMatchObject({
        type: 'invalid_request_error',
        code: 'charge_already_refunded',
      });
      expect((await gateway.get(`/v1/payment_intents/${id}`)).body).toMatchObject({
        status: 'succeeded',
        amount_received: 1000,
        amount_refunded: 1000,
      });

      const cancel = await gateway.post(`/v1/payment_intents/${id}/cancel`);
      expect(cancel.status).toBe(400);
      expect(cancel.body.error.code).toBe('payment_intent_unexpected_state');

      const events = await receiver.waitFor(() => receiver.about(id).length >= 3);
      const mine = events.filter(
        (r) => r.event.data.object.id === id || r.event.data.object.payment_intent === id,
      );
      expect(mine.map((r) => r.event.type).sort()).toEqual([
        'charge.captured',
        'charge.refunded',
        'charge.refunded',
      ]);
      for (const request of mine) {
        expect(request.validSignature).toBe(true);
        expect(request.event).toMatchObject({ object: 'event' });
        expect(request.event.id).toMatch(/^evt_/);
      }
    });

    it('refunds only captured intents of its own, and 404s unknown ones', async () => {
      const authorized = await gateway.post('/v1/payment_intents', intentBody('pm_card_visa'));
      const refund = await gateway.post('/v1/refunds', { payment_intent: authorized.body.id });
      expect(refund.status).toBe(400);
      expect(refund.body.error.code).toBe('payment_intent_unexpected_state');
      const unknown = await gateway.post('/v1/refunds', { payment_intent: 'pi_unknown' });
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('resource_missing');
      expect((await gateway.get('/v1/payment_intents/pi_unknown')).status).toBe(404);
    });

    it('declines with 402 and a reason, and keeps the failed intent', async () => {
      const declined = await gateway.post('/v1/payment_intents', intentBody('pm_card_declined'));
      expect(declined.status).toBe(402);
      expect(declined.body.error).toMatchObject({
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'generic_decline',
      });
      const stored = await gateway.get(
        `/v1/payment_intents/${declined.body.error.payment_intent.id}`,
      );
      expect(stored.body).toMatchObject({
        status: 'requires_payment_method',
        amount_capturable: 0,
        last_payment_error: {
          type: 'card_error',
          code: 'card_declined',
          decline_code: 'generic_decline',
        },
      });

      const poor = await gateway.post(
        '/v1/payment_intents',
        intentBody('pm_card_insufficient_funds'),
      );
      expect(poor.status).toBe(402);
      expect(poor.body.error).toMatchObject({
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'insufficient_funds',
      });

      const id = poor.body.error.payment_intent.id;
      await receiver.waitFor(() => receiver.about(id).length > 0);
      const [failed] = receiver.about(id);
      expect(failed.event.type).toBe('payment_intent.payment_failed');
      expect(failed.validSignature).toBe(true);
    });

    it('refuses bad input with 400 and the parameter', async () => {
      const cases: [unknown, string, string][] = [
        [intentBody('pm_card_nope'), 'payment_method', 'resource_missing'],
        [intentBody('pm_card_visa', { amount: 0 }), 'amount', 'parameter_invalid'],
        [intentBody('pm_card_visa', { amount: 10.5 }), 'amount', 'parameter_invalid'],
        [intentBody('pm_card_visa', { currency: 'EURO' }), 'currency', 'parameter_invalid'],
        [
          intentBody('pm_card_visa', { capture_method: 'automatic' }),
          'capture_method',
          'parameter_invalid',
        ],
        [intentBody('pm_card_visa', { metadata: { n: 1 } }), 'metadata', 'parameter_invalid'],
        [intentBody('pm_card_visa', { extra: true }), 'extra', 'parameter_unknown'],
        [{ currency: 'eur', payment_method: 'pm_card_visa' }, 'amount', 'parameter_missing'],
      ];
      for (const [body, param, code] of cases) {
        const response = await gateway.post('/v1/payment_intents', body);
        expect([response.status, response.body.error]).toEqual([
          400,
          expect.objectContaining({ type: 'invalid_request_error', param, code }),
        ]);
      }
      const longKey = await gateway.post(
        '/v1/payment_intents',
        intentBody('pm_card_visa'),
        'k'.repeat(256),
      );
      expect(longKey.status).toBe(400);
    });

    it('idempotency: replays the stored answer, refuses another body, and one key makes one intent', async () => {
      const key = randomUUID();
      const body = intentBody('pm_card_visa');
      const first = await gateway.post('/v1/payment_intents', body, key);
      expect(first.status).toBe(200);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const replay = await gateway.post('/v1/payment_intents', body, key);
      expect(replay.status).toBe(200);
      expect(replay.body).toEqual(first.body);
      expect(replay.headers['idempotent-replayed']).toBe('true');

      const other = await gateway.post('/v1/payment_intents', { ...body, amount: 999 }, key);
      expect(other.status).toBe(400);
      expect(other.body.error.type).toBe('idempotency_error');
      expect(await intentRows(body.metadata.test)).toBe(1);

      // A decline is an answer like any other: replayed with its 402.
      const declineKey = randomUUID();
      const declineBody = intentBody('pm_card_declined');
      const declined = await gateway.post('/v1/payment_intents', declineBody, declineKey);
      const declinedAgain = await gateway.post('/v1/payment_intents', declineBody, declineKey);
      expect([declined.status, declinedAgain.status]).toEqual([402, 402]);
      expect(declinedAgain.body).toEqual(declined.body);
      expect(declinedAgain.headers['idempotent-replayed']).toBe('true');

      // Capture honours keys too.
      const captureKey = randomUUID();
      const captured = await gateway.post(
        `/v1/payment_intents/${first.body.id}/capture`,
        undefined,
        captureKey,
      );
      const capturedAgain = await gateway.post(
        `/v1/payment_intents/${first.body.id}/capture`,
        undefined,
        captureKey,
      );
      expect([captured.status, capturedAgain.status]).toEqual([200, 200]);
      expect(capturedAgain.body).toEqual(captured.body);
      expect(capturedAgain.headers['idempotent-replayed']).toBe('true');
      const refundKey = randomUUID();
      const refunds = await Promise.all(
        Array.from({ length: 5 }, () =>
          gateway.post('/v1/refunds', { payment_intent: first.body.id, amount: 100 }, refundKey),
        ),
      );
      expect(new Set(refunds.map((r) => r.body.id)).size).toBe(1);
      expect((await gateway.get(`/v1/payment_intents/${first.body.id}`)).body.amount_refunded).toBe(
        100,
      );
    });

    it('20 concurrent requests with one key: one intent, everyone gets its answer', async () => {
      const key = randomUUID();
      const body = intentBody('pm_card_visa');
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => gateway.post('/v1/payment_intents', body, key)),
      );
      expect(countStatuses(responses.map((r) => r.status))).toEqual({ 200: 20 });
      expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
      expect(responses.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(19);
      expect(await intentRows(body.metadata.test)).toBe(1);
    });

    it('pm_card_flaky: 500 first and nothing stored, then the same key works', async () => {
      const key = randomUUID();
      const body = intentBody('pm_card_flaky');
      const first = await gateway.post('/v1/payment_intents', body, key);
      expect(first.status).toBe(500);
      expect(first.body.error.type).toBe('api_error');
      expect(await intentRows(body.metadata.test)).toBe(0);
      const retry = await gateway.post('/v1/payment_intents', body, key);
      expect(retry.status).toBe(200);
      expect(retry.body.status).toBe('requires_capture');
      const replay = await gateway.post('/v1/payment_intents', body, key);
      expect(replay.body).toEqual(retry.body);
      expect(await intentRows(body.metadata.test)).toBe(1);
    });

    it('pm_card_slow answers after GATEWAY_SLOW_MS, authorized', async () => {
      const started = Date.now();
      const slow = await gateway.post('/v1/payment_intents', intentBody('pm_card_slow'));
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(slow.status).toBe(200);
      expect(slow.body.status).toBe('requires_capture');
    });

    it('pm_card_async: processing, then a signed payment_intent.succeeded webhook and requires_capture', async () => {
      const created = await gateway.post('/v1/payment_intents', intentBody('pm_card_async'));
      expect(created.status).toBe(200);
      expect(created.body).toMatchObject({ status: 'processing', amount_capturable: 0 });
      const id = created.body.id;
      await receiver.waitFor(() => receiver.about(id).length > 0);
      const [succeeded] = receiver.about(id);
      expect(succeeded.event.type).toBe('payment_intent.succeeded');
      expect(succeeded.validSignature).toBe(true);
      expect(succeeded.event.data.object).toMatchObject({ id, status: 'requires_capture' });
      expect((await gateway.get(`/v1/payment_intents/${id}`)).body.status).toBe('requires_capture');
      expect((await gateway.post(`/v1/payment_intents/${id}/capture`)).body.status).toBe(
        'succeeded',
      );
    });

    it('cancel: voids authorized, processing and failed intents, again is the same answer, captured is 400', async () => {
      const authorized = await gateway.post('/v1/payment_intents', intentBody('pm_card_visa'));
      const id = authorized.body.id;
      const canceled = await gateway.post(`/v1/payment_intents/${id}/cancel`);
      expect(canceled.status).toBe(200);
      expect(canceled.body).toMatchObject({ status: 'canceled', amount_capturable: 0 });
      expect(typeof canceled.body.canceled_at).toBe('number');
      const again = await gateway.post(`/v1/payment_intents/${id}/cancel`);
      expect([again.status, again.body]).toEqual([200, canceled.body]);
      expect((await gateway.post(`/v1/payment_intents/${id}/capture`)).status).toBe(400);

      const processing = await gateway.post('/v1/payment_intents', intentBody('pm_card_async'));
      const voided = await gateway.post(`/v1/payment_intents/${processing.body.id}/cancel`);
      expect(voided.body.status).toBe('canceled');

      const declined = await gateway.post('/v1/payment_intents', intentBody('pm_card_declined'));
      const failedId = declined.body.error.payment_intent.id;
      expect((await gateway.post(`/v1/payment_intents/${failedId}/cancel`)).body.status).toBe(
        'canceled',
      );

      expect((await gateway.post('/v1/payment_intents/pi_unknown/cancel')).status).toBe(404);

      await receiver.waitFor(() => receiver.about(id).length > 0);
      expect(receiver.about(id).map((r) => r.event.type)).toEqual(['payment_intent.canceled']);
      // The cancelled async authorization never completes, not even once its time has passed.
      await new Promise((resolve) => setTimeout(resolve, 1300));
      expect(receiver.about(processing.body.id).map((r) => r.event.type)).toEqual([
        'payment_intent.canceled',
      ]);
      expect((await gateway.get(`/v1/payment_intents/${processing.body.id}`)).body.status).toBe(
        'canceled',
      );
    });

    it('lists intents oldest first, page by page', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i += 1) {
        ids.push((await gateway.post('/v1/payment_intents', intentBody('pm_card_visa'))).body.id);
      }
      const seen: string[] = [];
      let startingAfter: string | undefined;
      for (;;) {
        const query = `limit=7${startingAfter ? `&starting_after=${startingAfter}` : ''}`;
        const page = await gateway.get(`/v1/payment_intents?${query}`);
        expect(page.status).toBe(200);
        expect(page.body.object).toBe('list');
        expect(page.body.data.length).toBeLessThanOrEqual(7);
        seen.push(...page.body.data.map((intent: { id: string }) => intent.id));
        if (!page.body.has_more) break;
        startingAfter = seen[seen.length - 1];
      }
      expect(seen.slice(-3)).toEqual(ids);
      expect(new Set(seen).size).toBe(seen.length);
      expect((await gateway.get('/v1/payment_intents?limit=101')).status).toBe(400);
    });

    it('retries a webhook the receiver refuses, with backoff, until it is accepted', async () => {
      const authorized = await gateway.post('/v1/payment_intents', intentBody('pm_card_visa'));
      const id = authorized.body.id;
      let refusals = 0;
      receiver.respond = (event) => (event.data.object.id === id && refusals++ < 2 ? 500 : 200);
      try {
        await gateway.post(`/v1/payment_intents/${id}/cancel`);
        await receiver.waitFor(() => receiver.about(id).some((r) => r.status === 200));
      } finally {
        receiver.respond = () => 200;
      }
      const attempts = receiver.about(id);
      expect(attempts.map((r) => r.status)).toEqual([500, 500, 200]);
      expect(new Set(attempts.map((r) => r.event.id)).size).toBe(1);
      expect(attempts.every((r) => r.validSignature)).toBe(true);
      // Backoff: the second retry waits longer than the first (50 ms base, doubling, jittered).
      const gaps = [1, 2].map((i) => attempts[i].receivedAt - attempts[i - 1].receivedAt);
      expect(gaps[0]).toBeGreaterThanOrEqual(20);
      expect(gaps[1]).toBeGreaterThanOrEqual(45);
      // The receiver has answered; the simulator records the outcome just after.
      let rows: unknown[] = [];
      for (let waited = 0; waited < 2000; waited += 25) {
        ({ rows } = await db.query(
          `SELECT attempts, delivered_at IS NOT NULL AS delivered
             FROM gateway_sim.webhook_deliveries WHERE event_id = $1`,
          [attempts[0].event.id],
        ));
        if ((rows[0] as { delivered?: boolean } | undefined)?.delivered) break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(rows).toEqual([{ attempts: 3, delivered: true }]);
    });
  });

  describe('woken by work, not by polling', () => {
    let proxy: PgCountingProxy;
    let gateway: TestGateway;

    beforeAll(async () => {
      const url = new URL(testDatabaseUrl());
      proxy = await PgCountingProxy.start(url.hostname, Number(url.port || 5432), {
        logStatements: true,
      });
      gateway = await startGateway({
        GATEWAY_DATABASE_URL: proxy.urlFor(testDatabaseUrl()),
        GATEWAY_ASYNC_DELAY_MS: '1000',
      });
    });

    afterAll(async () => {
      await gateway.close();
      await proxy.stop();
    });

    async function statementsDuring(ms: number): Promise<string[]> {
      const from = proxy.statementLog().length;
      await new Promise((resolve) => setTimeout(resolve, ms));
      return proxy.statementLog(from);
    }

    it('runs no statement at idle once its start-up passes are done', async () => {
      await statementsDuring(500);
      // A 100 ms poll of its two loops would be 30 statements here.
      expect(await statementsDuring(1500)).toEqual([]);
    });

    it('completes an async authorization when due and sends its webhook at once, without polling', async () => {
      const from = proxy.statementLog().length;
      const createdAt = Date.now();
      const pending = await gateway.post('/v1/payment_intents', intentBody('pm_card_async'));
      const id = pending.body.id;
      await receiver.waitFor(() => receiver.about(id).length > 0);
      const [webhook] = receiver.about(id);
      expect(webhook.event.type).toBe('payment_intent.succeeded');
      expect(webhook.receivedAt - createdAt).toBeGreaterThanOrEqual(1000);
      // Missed wakes would wait for the 30 s safety check; loaded machines still answer in 1 s.
      expect(webhook.receivedAt - createdAt).toBeLessThan(2000);
      await statementsDuring(200);
      // The request, one pass of each loop, the delivery recorded: no pass in the second between.
      const passes = proxy.statementLog(from).filter((sql) => /^\s*WITH due AS/.test(sql)).length;
      expect(passes).toBe(2);
    });
  });

  describe('with duplicates and random delays', () => {
    let gateway: TestGateway;

    beforeAll(async () => {
      gateway = await startGateway({
        GATEWAY_WEBHOOK_DUPLICATE_RATE: '1',
        GATEWAY_WEBHOOK_MAX_DELAY_MS: '500',
      });
    });

    afterAll(async () => {
      await gateway.close();
    });

    it('delivers every event twice (same event id), out of order', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 10; i += 1) {
        const declined = await gateway.post('/v1/payment_intents', intentBody('pm_card_declined'));
        ids.push(declined.body.error.payment_intent.id);
      }
      await receiver.waitFor(() => ids.every((id) => receiver.about(id).length === 2));
      for (const id of ids) {
        const copies = receiver.about(id);
        expect(copies[0].event.id).toBe(copies[1].event.id);
        expect(copies.every((r) => r.validSignature)).toBe(true);
      }
      const arrival = receiver.requests
        .filter((r) => ids.includes(r.event.data.object.id))
        .map((r) => ids.indexOf(r.event.data.object.id));
      const inOrder = arrival.every((value, i) => i === 0 || value >= arrival[i - 1]);
      expect(inOrder).toBe(false);
    });
  });

  describe('across a restart', () => {
    it('keeps intents and keys, and a pending async authorization still completes', async () => {
      const first = await startGateway({ GATEWAY_ASYNC_DELAY_MS: '800' });
      const key = randomUUID();
      const visaBody = intentBody('pm_card_visa');
      const visa = await first.post('/v1/payment_intents', visaBody, key);
      const pending = await first.post('/v1/payment_intents', intentBody('pm_card_async'));
      expect(pending.body.status).toBe('processing');
      await first.close();

      const second = await startGateway();
      try {
        expect((await second.get(`/v1/payment_intents/${visa.body.id}`)).body).toEqual(visa.body);
        const replay = await second.post('/v1/payment_intents', visaBody, key);
        expect(replay.body).toEqual(visa.body);
        expect(replay.headers['idempotent-replayed']).toBe('true');

        const id = pending.body.id;
        await receiver.waitFor(() => receiver.about(id).length > 0);
        expect(receiver.about(id).map((r) => r.event.type)).toEqual(['payment_intent.succeeded']);
        expect((await second.get(`/v1/payment_intents/${id}`)).body.status).toBe(
          'requires_capture',
        );
      } finally {
        await second.close();
      }
    });

    it('starts cleanly when several instances create the schema at once, from nothing', async () => {
      // From nothing: the schema and tables do not exist yet when they race.
      await db.query('DROP SCHEMA gateway_sim CASCADE');
      const gateways = await Promise.all([startGateway(), startGateway(), startGateway()]);
      for (const gateway of gateways) expect((await gateway.get('/health')).status).toBe(200);
      await Promise.all(gateways.map((gateway) => gateway.close()));
    });
  });
});

import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { signWebhook } from '../apps/api/src/common/http/webhook-signature';
import {
  countStatuses,
  createEvent,
  type Customer,
  registerCustomer,
  registerCustomers,
} from './support/fixtures';
import { eventually, PaymentStack, WEBHOOK_SECRET } from './support/payment-stack';
import { freePort } from './support/redis-server';
import { TestApp } from './support/test-app';

describe('payments (real PostgreSQL, Redis and gateway simulator process)', () => {
  let stack: PaymentStack;
  let db: DataSource;
  let eventId: string;
  let customer: Customer;

  beforeAll(async () => {
    stack = await PaymentStack.start(
      { GATEWAY_TIMEOUT_MS: '5000' },
      { GATEWAY_ASYNC_DELAY_MS: '1500' },
    );
    db = stack.api.app.get(DataSource);
    eventId = await createEvent(stack.api, [
      { name: 'Floor', rows: 10, seatsPerRow: 10, priceCents: 4200 },
    ]);
    customer = await registerCustomer(stack.api);
  });

  afterAll(async () => {
    await stack.close();
  });

  async function seatStatuses(labels: string[]): Promise<Record<string, string>> {
    const rows = await db.query<{ label: string; status: string }[]>(
      `SELECT label, status FROM seats WHERE event_id = $1 AND label = ANY($2)`,
      [eventId, labels],
    );
    return Object.fromEntries(rows.map((row) => [row.label, row.status]));
  }

  async function timelineTypes(bookingId: string, who = customer): Promise<string[]> {
    const response = await stack.api.get(`/bookings/${bookingId}/events`, { token: who.token });
    return response.body.map((entry: { type: string }) => entry.type);
  }

  it('happy path: hold → pay with pm_card_visa → confirmed, captured once, seats booked, ledger clean', async () => {
    const bookingId = await stack.hold(customer, eventId, ['A1', 'A2']);

    const paid = await stack.pay(customer, bookingId, 'pm_card_visa');

    expect(paid.status).toBe(201);
    expect(paid.body.booking).toMatchObject({ id: bookingId, status: 'confirmed' });
    expect(paid.body.payment).toMatchObject({
      bookingId,
      status: 'captured',
      amountCents: 8400,
      refundedCents: 0,
      currency: 'EUR',
      paymentMethod: 'pm_card_visa',
    });
    expect(await seatStatuses(['A1', 'A2'])).toEqual({ A1: 'booked', A2: 'booked' });
    const intents = await stack.intentsFor(bookingId);
    expect(intents).toHaveLength(1);
    expect(intents[0]).toMatchObject({
      id: paid.body.payment.gatewayIntentId,
      status: 'succeeded',
      amount: 8400,
      amount_received: 8400,
      currency: 'eur',
    });
    const listed = await stack.api.get(`/bookings/${bookingId}/payments`, {
      token: customer.token,
    });
    expect(listed.body).toEqual([paid.body.payment]);
    expect(await timelineTypes(bookingId)).toEqual(['booking.held', 'booking.confirmed']);
    // A paid seat is nobody else's.
    const other = await registerCustomer(stack.api);
    const taken = await stack.api.post(
      '/bookings',
      { eventId, seatIds: ['A2'] },
      { token: other.token },
    );
    expect(taken.status).toBe(409);
    expect(await stack.ledgerViolations([bookingId])).toEqual([]);
  });

  it('declined and insufficient funds → 402 with the reason, the hold stays; another card then succeeds', async () => {
    const bookingId = await stack.hold(customer, eventId, ['B1']);

    const declined = await stack.pay(customer, bookingId, 'pm_card_declined');
    const broke = await stack.pay(customer, bookingId, 'pm_card_insufficient_funds');

    expect(declined.status).toBe(402);
    expect(declined.headers['content-type']).toContain('application/problem+json');
    expect(declined.body).toMatchObject({
      code: 'PAYMENT.DECLINED',
      declineCode: 'generic_decline',
      reason: 'Your card was declined.',
      payment: { status: 'failed', failureCode: 'generic_decline' },
    });
    expect(broke.status).toBe(402);
    expect(broke.body).toMatchObject({
      code: 'PAYMENT.DECLINED',
      declineCode: 'insufficient_funds',
      reason: 'Your card has insufficient funds.',
    });
    const booking = await stack.api.get(`/bookings/${bookingId}`, { token: customer.token });
    expect(booking.body.status).toBe('held');
    expect(await seatStatuses(['B1'])).toEqual({ B1: 'held' });

    const paid = await stack.pay(customer, bookingId, 'pm_card_visa');

    expect(paid.status).toBe(201);
    expect(paid.body.booking.status).toBe('confirmed');
    const listed = await stack.api.get(`/bookings/${bookingId}/payments`, {
      token: customer.token,
    });
    expect(listed.body.map((p: { status: string }) => p.status)).toEqual([
      'failed',
      'failed',
      'captured',
    ]);
    expect(await timelineTypes(bookingId)).toEqual([
      'booking.held',
      'payment.declined',
      'payment.declined',
      'booking.confirmed',
    ]);
    expect(await stack.ledgerViolations([bookingId])).toEqual([]);
  });

  describe('Idempotency-Key', () => {
    it('a replay answers the identical body with Idempotent-Replayed; another body with the key is 422', async () => {
      const bookingId = await stack.hold(customer, eventId, ['C1']);
      const key = randomUUID();

      const first = await stack.pay(customer, bookingId, 'pm_card_visa', key);
      const replay = await stack.pay(customer, bookingId, 'pm_card_visa', key);
      const otherBody = await stack.pay(customer, bookingId, 'pm_card_declined', key);

      expect(first.status).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      expect(replay.status).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.body).toEqual(first.body);
      expect(JSON.stringify(replay.body)).toBe(JSON.stringify(first.body));
      expect(otherBody.status).toBe(422);
      expect(otherBody.body).toMatchObject({ code: 'IDEMPOTENCY.KEY_REUSED' });
      expect(await stack.intentsFor(bookingId)).toHaveLength(1);
    });

    it('a stored 402 is replayed as it was, byte for byte', async () => {
      const bookingId = await stack.hold(customer, eventId, ['C2']);
      const key = randomUUID();

      const first = await stack.pay(customer, bookingId, 'pm_card_declined', key);
      const replay = await stack.pay(customer, bookingId, 'pm_card_declined', key);

      expect(first.status).toBe(402);
      expect(replay.status).toBe(402);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.headers['content-type']).toContain('application/problem+json');
      expect(JSON.stringify(replay.body)).toBe(JSON.stringify(first.body));
      expect(await stack.intentsFor(bookingId)).toHaveLength(1);
    });

    it('20 concurrent requests with one key → one authorization at the gateway', async () => {
      const bookingId = await stack.hold(customer, eventId, ['C3']);
      const key = randomUUID();

      const responses = await Promise.all(
        Array.from({ length: 20 }, () => stack.pay(customer, bookingId, 'pm_card_visa', key)),
      );

      const statuses = countStatuses(responses.map((r) => r.status));
      expect(Object.keys(statuses).sort()).toEqual(
        Object.keys(statuses).filter((s) => s === '201' || s === '409'),
      );
      const created = responses.filter((r) => r.status === 201);
      expect(created.filter((r) => r.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
      for (const conflict of responses.filter((r) => r.status === 409)) {
        expect(conflict.body.code).toBe('IDEMPOTENCY.IN_FLIGHT');
        expect(conflict.headers['retry-after']).toBe('1');
      }
      expect(await stack.intentsFor(bookingId)).toHaveLength(1);
      const listed = await stack.api.get(`/bookings/${bookingId}/payments`, {
        token: customer.token,
      });
      expect(listed.body).toHaveLength(1);
      expect(await stack.ledgerViolations([bookingId])).toEqual([]);
    });

    it('keys are per customer: the same key from another customer is a separate request', async () => {
      const other = await registerCustomer(stack.api);
      const key = randomUUID();
      const mine = await stack.hold(customer, eventId, ['C4']);
      const theirs = await stack.hold(other, eventId, ['C5']);

      const a = await stack.pay(customer, mine, 'pm_card_visa', key);
      const b = await stack.pay(other, theirs, 'pm_card_visa', key);

      expect([a.status, b.status]).toEqual([201, 201]);
      expect(b.headers['idempotent-replayed']).toBeUndefined();
      expect(b.body.booking.id).toBe(theirs);
    });

    it('missing, empty or over-long keys are a 400 naming the header; nothing is charged', async () => {
      const bookingId = await stack.hold(customer, eventId, ['C6']);
      const path = `/bookings/${bookingId}/payments`;
      const body = { paymentMethod: 'pm_card_visa' };

      const missing = await stack.api.post(path, body, { token: customer.token });
      const tooLong = await stack.api.post(path, body, {
        token: customer.token,
        headers: { 'idempotency-key': 'k'.repeat(256) },
      });

      for (const response of [missing, tooLong]) {
        expect(response.status).toBe(400);
        expect(response.headers['content-type']).toContain('application/problem+json');
        expect(response.body.errors[0].field).toBe('Idempotency-Key');
      }
      expect(missing.body.code).toBe('IDEMPOTENCY.KEY_REQUIRED');
      expect(await stack.intentsFor(bookingId)).toHaveLength(0);
      const booking = await stack.api.get(`/bookings/${bookingId}`, { token: customer.token });
      expect(booking.body.status).toBe('held');
    });
  });

  it('200 concurrent payments of one booking with different keys → one capture; nothing else charged', async () => {
    const bookingId = await stack.hold(customer, eventId, ['D1']);

    const responses = await Promise.all(
      Array.from({ length: 200 }, () => stack.pay(customer, bookingId, 'pm_card_visa')),
    );

    const statuses = countStatuses(responses.map((r) => r.status));
    expect(statuses[201]).toBe(1);
    expect((statuses[201] ?? 0) + (statuses[409] ?? 0)).toBe(200);
    const codes = new Set(responses.filter((r) => r.status === 409).map((r) => r.body.code));
    for (const code of codes) {
      expect(['PAYMENT.IN_PROGRESS', 'BOOKING.NOT_PAYABLE', 'PAYMENT.SEAT_LOST']).toContain(code);
    }
    const intents = await stack.intentsFor(bookingId);
    expect(intents.filter((intent) => intent.status === 'succeeded')).toHaveLength(1);
    expect(await stack.ledgerViolations([bookingId])).toEqual([]);
  });

  it('Redis unreachable: 100 concurrent payments of one booking → still one capture (PostgreSQL decides)', async () => {
    const noRedis = await TestApp.start({
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      REDIS_COMMAND_TIMEOUT_MS: '200',
      GATEWAY_URL: stack.gateway.url,
      GATEWAY_TIMEOUT_MS: '5000',
    });
    try {
      const who = await registerCustomer(noRedis);
      const hold = await noRedis.post(
        '/bookings',
        { eventId, seatIds: ['D2'] },
        { token: who.token },
      );
      expect(hold.status).toBe(201);
      const bookingId = hold.body.id;

      const responses = await Promise.all(
        Array.from({ length: 100 }, () =>
          noRedis.post(
            `/bookings/${bookingId}/payments`,
            { paymentMethod: 'pm_card_visa' },
            { token: who.token, headers: { 'idempotency-key': randomUUID() } },
          ),
        ),
      );

      const statuses = countStatuses(responses.map((r) => r.status));
      expect(statuses[201]).toBe(1);
      expect((statuses[201] ?? 0) + (statuses[409] ?? 0)).toBe(100);
      const intents = await stack.intentsFor(bookingId);
      expect(intents.filter((intent) => intent.status === 'succeeded')).toHaveLength(1);
      // Every other authorization that reached the gateway was given back.
      expect(intents.filter((intent) => intent.status === 'requires_capture')).toEqual([]);
      expect(await stack.ledgerViolations([bookingId])).toEqual([]);
    } finally {
      await noRedis.close();
    }
  });

  describe('webhooks', () => {
    const post = (body: string, signature?: string) =>
      stack.api.request('POST', '/payments/webhook', undefined, {
        raw: body,
        headers: {
          'content-type': 'application/json',
          ...(signature === undefined ? {} : { 'gateway-signature': signature }),
        },
      });

    function event(type: string, object: Record<string, unknown>, id = `evt_${randomUUID()}`) {
      return JSON.stringify({ id, object: 'event', type, created: 0, data: { object } });
    }

    it('a missing, wrong or stale signature is 400 and changes nothing', async () => {
      const body = event('payment_intent.succeeded', {
        id: 'pi_unknown',
        status: 'requires_capture',
      });
      const now = Math.floor(Date.now() / 1000);

      const missing = await post(body);
      const wrongSecret = await post(body, signWebhook('whsec_someone_else', body));
      const tampered = await post(
        body.replace('pi_unknown', 'pi_other'),
        signWebhook(WEBHOOK_SECRET, body),
      );
      // A minute past the 300 s tolerance either way: seconds of a loaded machine between `now`
      // and the server's check must not bring the future one back inside it.
      const stale = await post(body, signWebhook(WEBHOOK_SECRET, body, now - 360));
      const future = await post(body, signWebhook(WEBHOOK_SECRET, body, now + 360));

      for (const response of [missing, wrongSecret, tampered, stale, future]) {
        expect(response.status).toBe(400);
        expect(response.headers['content-type']).toContain('application/problem+json');
        expect(response.body.code).toBe('WEBHOOK.INVALID_SIGNATURE');
      }
      expect(stale.body.detail).toMatch(/300 s/);
      const [{ count }] = await db.query(
        `SELECT count(*)::int AS count FROM gateway_events WHERE id = $1`,
        [JSON.parse(body).id],
      );
      expect(count).toBe(0);
    });

    it('a correctly signed event for an unknown payment is acknowledged; a replayed event id has no second effect', async () => {
      const unknown = event('payment_intent.succeeded', {
        id: 'pi_nobody',
        status: 'requires_capture',
      });
      const ack = await post(unknown, signWebhook(WEBHOOK_SECRET, unknown));
      expect(ack.status).toBe(200);
      expect(ack.body).toEqual({ received: true, duplicate: false });

      // A real asynchronous payment, paid at the gateway (its own webhook confirms it); then a
      // signed event about it, sent twice: recorded once, with no effect either time.
      const bookingId = await stack.hold(customer, eventId, ['E1']);
      const pending = await stack.pay(customer, bookingId, 'pm_card_async');
      expect(pending.status).toBe(201);
      expect(pending.body.payment.status).toBe('pending');
      await eventually('the payment captured after the gateway decided', async () => {
        const response = await stack.api.get(`/bookings/${bookingId}/payments`, {
          token: customer.token,
        });
        return response.body[0]?.status === 'captured';
      });
      const succeeded = event('payment_intent.succeeded', {
        id: pending.body.payment.gatewayIntentId,
        status: 'requires_capture',
        metadata: { bookingId, paymentId: pending.body.payment.id },
      });

      const first = await post(succeeded, signWebhook(WEBHOOK_SECRET, succeeded));
      const again = await post(succeeded, signWebhook(WEBHOOK_SECRET, succeeded));

      expect(first.body).toEqual({ received: true, duplicate: false });
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ received: true, duplicate: true });
      expect(
        (await timelineTypes(bookingId)).filter((t) => t === 'booking.confirmed'),
      ).toHaveLength(1);
      const [payment] = (
        await stack.api.get(`/bookings/${bookingId}/payments`, { token: customer.token })
      ).body;
      expect(payment).toMatchObject({ status: 'captured', refundedCents: 0 });
      const booking = await stack.api.get(`/bookings/${bookingId}`, { token: customer.token });
      expect(booking.body.status).toBe('confirmed');
      expect(await stack.ledgerViolations([bookingId])).toEqual([]);
    });

    it('pm_card_async within the hold: pending, then confirmed and captured through the signed webhook', async () => {
      const bookingId = await stack.hold(customer, eventId, ['E2']);

      const pending = await stack.pay(customer, bookingId, 'pm_card_async');

      expect(pending.status).toBe(201);
      expect(pending.body).toMatchObject({
        payment: { status: 'pending' },
        booking: { status: 'held' },
      });
      // Confirmed by the webhook, then captured after that commit: wait for the payment.
      const payment = await eventually('the payment captured after the webhook', async () => {
        const response = await stack.api.get(`/bookings/${bookingId}/payments`, {
          token: customer.token,
        });
        return response.body[0]?.status === 'captured' && response.body[0];
      });
      expect(payment.status).toBe('captured');
      const booking = await stack.api.get(`/bookings/${bookingId}`, { token: customer.token });
      expect(booking.body.status).toBe('confirmed');
      expect(await stack.ledgerViolations([bookingId])).toEqual([]);
    });
  });

  describe('gateway failures', () => {
    it('pm_card_flaky: the transient 500 is retried with the same key → 201, one authorization', async () => {
      const bookingId = await stack.hold(customer, eventId, ['F1']);

      const paid = await stack.pay(customer, bookingId, 'pm_card_flaky');

      expect(paid.status).toBe(201);
      expect(paid.body.payment.status).toBe('captured');
      expect(await stack.intentsFor(bookingId)).toHaveLength(1);
      expect(await stack.ledgerViolations([bookingId])).toEqual([]);
    });

    it('gateway down → 503 problem with Retry-After, hold intact; after it is back the retry pays once', async () => {
      const bookingId = await stack.hold(customer, eventId, ['F2']);
      const key = randomUUID();
      await stack.gateway.stop();
      let down;
      try {
        down = await stack.pay(customer, bookingId, 'pm_card_visa', key);
      } finally {
        await stack.gateway.restart();
      }

      expect(down.status).toBe(503);
      expect(down.headers['content-type']).toContain('application/problem+json');
      expect(down.headers['retry-after']).toBeDefined();
      expect(down.body.code).toBe('PAYMENT.GATEWAY_UNAVAILABLE');
      const held = await stack.api.get(`/bookings/${bookingId}`, { token: customer.token });
      expect(held.body.status).toBe('held');
      expect(await seatStatuses(['F2'])).toEqual({ F2: 'held' });

      const retried = await stack.pay(customer, bookingId, 'pm_card_visa', key);

      expect(retried.status).toBe(201);
      expect(retried.headers['idempotent-replayed']).toBeUndefined();
      expect(retried.body.booking.status).toBe('confirmed');
      expect(await stack.intentsFor(bookingId)).toHaveLength(1);
      expect(await stack.ledgerViolations([bookingId])).toEqual([]);
    });
  });

  it('cancelling a confirmed booking refunds it and frees the seats; repeating it changes nothing', async () => {
    const bookingId = await stack.hold(customer, eventId, ['G1', 'G2']);
    const paid = await stack.pay(customer, bookingId, 'pm_card_visa');
    expect(paid.status).toBe(201);

    const cancelled = await stack.api.request('DELETE', `/bookings/${bookingId}`, undefined, {
      token: customer.token,
    });
    const again = await stack.api.request('DELETE', `/bookings/${bookingId}`, undefined, {
      token: customer.token,
    });

    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect(again.status).toBe(200);
    expect(again.body).toEqual(cancelled.body);
    const [payment] = (
      await stack.api.get(`/bookings/${bookingId}/payments`, { token: customer.token })
    ).body;
    expect(payment).toMatchObject({ status: 'refunded', refundedCents: 8400 });
    const [intent] = await stack.intentsFor(bookingId);
    expect(intent).toMatchObject({ status: 'succeeded', amount_refunded: 8400 });
    expect(await seatStatuses(['G1', 'G2'])).toEqual({ G1: 'free', G2: 'free' });
    expect(await timelineTypes(bookingId)).toEqual([
      'booking.held',
      'booking.confirmed',
      'booking.cancelled',
      'payment.refunded',
    ]);
    // The seats can be sold again at once (the Redis keys were released too).
    const next = await registerCustomer(stack.api);
    const rebooked = await stack.hold(next, eventId, ['G1', 'G2']);
    expect(rebooked).toBeDefined();
    expect(await stack.ledgerViolations([bookingId])).toEqual([]);
  });

  it('paying a booking that is not held is 409 BOOKING.NOT_PAYABLE; another customer’s booking is 404', async () => {
    const bookingId = await stack.hold(customer, eventId, ['H1']);
    await stack.api.request('DELETE', `/bookings/${bookingId}`, undefined, {
      token: customer.token,
    });
    const [stranger] = await registerCustomers(stack.api, 1);

    const released = await stack.pay(customer, bookingId, 'pm_card_visa');
    const notMine = await stack.pay(stranger, bookingId, 'pm_card_visa');
    const listNotMine = await stack.api.get(`/bookings/${bookingId}/payments`, {
      token: stranger.token,
    });

    expect(released.status).toBe(409);
    expect(released.body).toMatchObject({ code: 'BOOKING.NOT_PAYABLE', currentStatus: 'released' });
    expect(notMine.status).toBe(404);
    expect(listNotMine.status).toBe(404);
    expect(await stack.intentsFor(bookingId)).toHaveLength(0);
  });
});

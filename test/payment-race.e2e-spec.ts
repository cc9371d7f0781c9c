import { setTimeout as sleep } from 'node:timers/promises';
import { createEvent, registerCustomer } from './support/fixtures';
import { eventually, PaymentStack } from './support/payment-stack';
import { RedisServer } from './support/redis-server';
import { TestApp } from './support/test-app';

/**
 * "If two users pay for the same seat but only one gets it, how is the other user's payment
 * refunded?" — with real timing: a 3 s hold, a card that takes 4 s, and a webhook that comes late.
 */
describe('the last seat, paid for twice (real PostgreSQL, Redis and gateway simulator process)', () => {
  let stack: PaymentStack;

  beforeAll(async () => {
    stack = await PaymentStack.start(
      { HOLD_TTL_SECONDS: '3', GATEWAY_TIMEOUT_MS: '8000' },
      { GATEWAY_SLOW_MS: '4000', GATEWAY_ASYNC_DELAY_MS: '4000' },
    );
  });

  afterAll(async () => {
    await stack.close();
  });

  it('A pays slowly, A’s hold lapses, B holds and pays → B confirmed; A’s authorization voided, A told why', async () => {
    const eventId = await createEvent(stack.api);
    const alice = await registerCustomer(stack.api);
    const bob = await registerCustomer(stack.api);
    const aliceBooking = await stack.hold(alice, eventId, ['A1']);

    const alicePaying = stack.pay(alice, aliceBooking, 'pm_card_slow');
    await sleep(3200);
    const bobBooking = await stack.hold(bob, eventId, ['A1']);
    const bobPaid = await stack.pay(bob, bobBooking, 'pm_card_visa');
    const alicePaid = await alicePaying;

    expect(bobPaid.status).toBe(201);
    expect(bobPaid.body.booking.status).toBe('confirmed');
    expect(bobPaid.body.payment.status).toBe('captured');

    expect(alicePaid.status).toBe(409);
    expect(alicePaid.headers['content-type']).toContain('application/problem+json');
    expect(alicePaid.body).toMatchObject({
      code: 'PAYMENT.SEAT_LOST',
      payment: { status: 'voided', failureCode: 'seat_lost', refundedCents: 0 },
      booking: { id: aliceBooking, status: 'expired' },
    });
    expect(alicePaid.body.detail).toMatch(/hold lapsed/);
    const [aliceIntent] = await stack.intentsFor(aliceBooking);
    expect(aliceIntent).toMatchObject({ status: 'canceled', amount_received: 0 });

    const timeline = await stack.api.get(`/bookings/${aliceBooking}/events`, {
      token: alice.token,
    });
    expect(timeline.body.map((entry: { type: string }) => entry.type)).toEqual([
      'booking.held',
      'booking.expired',
      'payment.voided',
    ]);
    const voided = timeline.body[2];
    expect(voided.detail).toMatch(/voided; nothing was charged/);
    expect(voided.detail).toMatch(/hold lapsed/);

    const seats = await stack.api.get(`/events/${eventId}/seats`);
    expect(seats.body.find((seat: { label: string }) => seat.label === 'A1').status).toBe('booked');
    expect(await stack.ledgerViolations([aliceBooking, bobBooking])).toEqual([]);
  });

  it('the payment lock is lost mid-payment (Redis flushed) → the gateway call is aborted, nothing confirmed; the reconciler finishes it', async () => {
    const redis = await RedisServer.start();
    const api = await TestApp.start({
      REDIS_URL: redis.url,
      GATEWAY_URL: stack.gateway.url,
      GATEWAY_TIMEOUT_MS: '8000',
      RECONCILE_INTERVAL_MS: '500',
      HOLD_TTL_SECONDS: '60',
    });
    try {
      const eventId = await createEvent(api);
      const dave = await registerCustomer(api);
      const hold = await api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: dave.token });
      const bookingId = hold.body.id;

      const paying = api.post(
        `/bookings/${bookingId}/payments`,
        { paymentMethod: 'pm_card_slow' },
        { token: dave.token, headers: { 'idempotency-key': 'lost-lock' } },
      );
      // The lease (6 s) is renewed every 2 s; the first renewal after the flush finds it gone.
      await sleep(500);
      await redis.flushAll();
      const interrupted = await paying;

      expect(interrupted.status).toBe(503);
      expect(interrupted.body.code).toBe('PAYMENT.INTERRUPTED');
      expect(interrupted.headers['retry-after']).toBeDefined();
      const during = await api.get(`/bookings/${bookingId}`, { token: dave.token });
      expect(during.body.status).toBe('held');

      // Nothing was lost either: the reconciler replays the authorization under the same gateway
      // key and confirms, since the hold still stands with the same fence.
      const payments = await eventually(
        'the payment captured after the reconciler confirmed it',
        async () => {
          const response = await api.get(`/bookings/${bookingId}/payments`, {
            token: dave.token,
          });
          return response.body[0]?.status === 'captured' && response.body;
        },
        30_000,
      );
      expect(payments).toHaveLength(1);
      const booking = await api.get(`/bookings/${bookingId}`, { token: dave.token });
      expect(booking.body.status).toBe('confirmed');
      expect(await stack.intentsFor(bookingId)).toHaveLength(1);
      expect(await stack.ledgerViolations([bookingId])).toEqual([]);
    } finally {
      await api.close();
      await redis.stop();
    }
  });

  it('pm_card_async succeeding after the hold lapsed → the authorization is voided, the booking not confirmed', async () => {
    const eventId = await createEvent(stack.api);
    const carol = await registerCustomer(stack.api);
    const bookingId = await stack.hold(carol, eventId, ['A1']);

    const pending = await stack.pay(carol, bookingId, 'pm_card_async');
    expect(pending.status).toBe(201);
    expect(pending.body.payment.status).toBe('pending');

    // The gateway authorizes after 4 s; the hold lapsed at 3 s. Its webhook must not book the seat.
    const payment = await eventually(
      'the late authorization settled',
      async () => {
        const response = await stack.api.get(`/bookings/${bookingId}/payments`, {
          token: carol.token,
        });
        const [current] = response.body;
        return ['voided', 'refunded'].includes(current.status) && current;
      },
      20_000,
    );

    expect(payment).toMatchObject({ status: 'voided', failureCode: 'seat_lost' });
    const booking = await stack.api.get(`/bookings/${bookingId}`, { token: carol.token });
    expect(booking.body.status).toBe('expired');
    const [intent] = await stack.intentsFor(bookingId);
    expect(intent.status).toBe('canceled');
    const seats = await stack.api.get(`/events/${eventId}/seats`);
    expect(seats.body.find((seat: { label: string }) => seat.label === 'A1').status).toBe('free');
    expect(await stack.ledgerViolations([bookingId])).toEqual([]);
  });
});

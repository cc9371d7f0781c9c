import { Client } from 'pg';
import {
  type AuthorizeRequest,
  PaymentGateway,
} from '../apps/api/src/modules/payment/gateway/payment-gateway';
import { PaymentWorkflowService } from '../apps/api/src/modules/payment/payment-workflow.service';
import { CallPause } from './support/call-pause';
import { createEvent, registerCustomer } from './support/fixtures';
import { eventually, PaymentStack } from './support/payment-stack';
import { testDatabaseUrl } from './support/test-env';

/**
 * The two interleavings the SPIN model of the payment protocol found (docs/model.md, F1 and F2),
 * replayed on the real API, PostgreSQL, Redis and gateway simulator: a pause is put exactly where
 * the model's counterexample trail had one actor wait while others moved.
 */
describe('payment interleavings found by the model (real PostgreSQL, Redis and gateway process)', () => {
  let stack: PaymentStack;
  let db: Client;

  beforeAll(async () => {
    stack = await PaymentStack.start(
      { HOLD_TTL_SECONDS: '60', RECONCILE_INTERVAL_MS: '300' },
      { GATEWAY_SLOW_MS: '1500', GATEWAY_ASYNC_DELAY_MS: '1500' },
    );
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    await stack?.close();
  });

  async function paymentsOf(bookingId: string) {
    const { rows } = await db.query<{ id: string; status: string; next_action: string | null }>(
      `SELECT id, status, next_action FROM payments WHERE booking_id = $1 ORDER BY created_at`,
      [bookingId],
    );
    return rows;
  }

  it('F1: a payment whose request paused before its lock, taken on by the reconciler, is not deleted while the gateway authorizes it; it books the seat', async () => {
    const eventId = await createEvent(stack.api);
    const alice = await registerCustomer(stack.api);
    const bookingId = await stack.hold(alice, eventId, ['A1']);
    const workflow = stack.api.app.get(PaymentWorkflowService);
    const gateway = stack.api.app.get(PaymentGateway);

    // The request: its payment row written, then paused before it takes the booking's lock.
    const paused = CallPause.next(workflow, 'underLock', (id: string) => id === bookingId);
    const paying = stack.pay(alice, bookingId, 'pm_card_slow');
    await paused.reached;
    const [pending] = await paymentsOf(bookingId);
    expect(pending).toMatchObject({ status: 'pending', next_action: 'authorize' });

    // Paused past the reconciler's grace (the clock moved instead of the test waiting for it):
    // the reconciler takes the payment on and asks the gateway to authorize it.
    const authorizing = CallPause.watch(
      gateway,
      'authorize',
      (request: AuthorizeRequest) => request.metadata.paymentId === pending.id,
    );
    await db.query(
      `UPDATE payments SET updated_at = updated_at - interval '1 minute' WHERE id = $1`,
      [pending.id],
    );
    await authorizing.reached;

    // The request goes on while the gateway works: the lock is busy, so it answers 409, and the
    // payment it created is not deleted under the reconciler (before the fix it was, leaving the
    // authorization open at the gateway and the reconciler with no row to confirm).
    paused.resume();
    const answer = await paying;
    expect(answer.status).toBe(409);
    expect(answer.body.code).toBe('PAYMENT.IN_PROGRESS');

    const [payment] = await eventually('the reconciler finished the payment', async () => {
      const rows = await paymentsOf(bookingId);
      return rows.length === 1 && rows[0].next_action === null && rows;
    });
    expect(payment).toMatchObject({ id: pending.id, status: 'captured' });
    const booking = await stack.api.get(`/bookings/${bookingId}`, { token: alice.token });
    expect(booking.body.status).toBe('confirmed');
    const intents = await stack.intentsFor(bookingId);
    expect(intents.map((intent) => intent.status)).toEqual(['succeeded']);
    expect(await stack.ledgerViolations([bookingId])).toEqual([]);
  });

  it('F2: the reconciler’s stale look at an asynchronous card does not take back a payment the webhook confirmed and captured meanwhile', async () => {
    const eventId = await createEvent(stack.api);
    const bob = await registerCustomer(stack.api);
    const bookingId = await stack.hold(bob, eventId, ['A1']);
    const gateway = stack.api.app.get(PaymentGateway);

    const started = await stack.pay(bob, bookingId, 'pm_card_async');
    expect(started.status).toBe(201);
    const paymentId: string = started.body.payment.id;
    const intentId: string = started.body.payment.gatewayIntentId;

    // The reconciler asks about asynchronous cards pending for a minute: make this one look so,
    // and pause the reconciler between its read and the gateway's answer.
    const asking = CallPause.next(gateway, 'retrieve', (id: string) => id === intentId);
    await db.query(
      `UPDATE payments SET updated_at = updated_at - interval '2 minutes' WHERE id = $1`,
      [paymentId],
    );
    await asking.reached;

    // Meanwhile the webhook comes: the payment is confirmed and captured.
    await eventually('the webhook confirmed and captured the payment', async () => {
      const [row] = await paymentsOf(bookingId);
      return row.status === 'captured' && row.next_action === null;
    });
    asking.resume();

    // The reconciler's decision, from its stale read, must find the payment moved on.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const [payment] = await paymentsOf(bookingId);
    expect(payment).toMatchObject({ id: paymentId, status: 'captured', next_action: null });
    const booking = await stack.api.get(`/bookings/${bookingId}`, { token: bob.token });
    expect(booking.body.status).toBe('confirmed');
    const [intent] = await stack.intentsFor(bookingId);
    expect(intent).toMatchObject({ status: 'succeeded', amount_refunded: 0 });
    expect(await stack.ledgerViolations([bookingId])).toEqual([]);
  });
});

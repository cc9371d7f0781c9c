import { setTimeout as sleep } from 'node:timers/promises';
import { createEvent, registerCustomer } from './support/fixtures';
import { OutboundWebhookReceiver } from './support/outbound-webhook-receiver';
import { eventually, PaymentStack } from './support/payment-stack';
import { SmtpReceiver } from './support/smtp-receiver';

/**
 * Every transition reaches the customer on every channel, exactly once, as it happened: in-app,
 * a signed webhook and an email, with real receivers (HTTP and SMTP servers started here).
 */
describe('one run, three channels (real PostgreSQL, Redis, gateway simulator, HTTP and SMTP receivers)', () => {
  let stack: PaymentStack;
  let hooks: OutboundWebhookReceiver;
  let smtp: SmtpReceiver;

  beforeAll(async () => {
    hooks = await OutboundWebhookReceiver.start();
    smtp = await SmtpReceiver.start();
    stack = await PaymentStack.start(
      {
        SMTP_URL: smtp.url,
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
        NOTIFY_POLL_MS: '100',
        HOLD_TTL_SECONDS: '3',
        GATEWAY_TIMEOUT_MS: '8000',
      },
      { GATEWAY_SLOW_MS: '4000' },
    );
  });

  afterAll(async () => {
    await stack.close();
    await hooks.close();
    await smtp.close();
  });

  async function subscribe(token: string): Promise<void> {
    const endpoint = await stack.api.post('/webhook-endpoints', { url: hooks.url }, { token });
    expect(endpoint.status).toBe(201);
    hooks.secret = endpoint.body.secret;
  }

  it('hold → pay → confirm → cancel: one in-app notification, one signed webhook and one email per transition', async () => {
    const eventId = await createEvent(stack.api);
    const customer = await registerCustomer(stack.api);
    await subscribe(customer.token);
    const bookingId = await stack.hold(customer, eventId, ['A1', 'A2']);
    expect((await stack.pay(customer, bookingId)).status).toBe(201);
    const cancelled = await stack.api.request('DELETE', `/bookings/${bookingId}`, undefined, {
      token: customer.token,
    });
    expect(cancelled.status).toBe(200);
    const transitions = [
      'booking.held',
      'booking.confirmed',
      'booking.cancelled',
      'payment.refunded',
    ];

    const webhooks = await hooks.waitFor('four webhooks', (all) => all.length >= 4);
    const emails = await eventually('four emails', async () => {
      const received = smtp.to(customer.email);
      return received.length >= 4 && received;
    });
    // Give a duplicate, if there were one, the time to arrive.
    await sleep(1000);

    const inApp = await stack.api.get('/notifications', { token: customer.token });
    expect(inApp.body.map((n: { type: string }) => n.type).reverse()).toEqual(transitions);
    expect(hooks.requests.map((r) => r.event.type)).toEqual(transitions);
    expect(hooks.requests.every((r) => r.signatureProblem === null)).toBe(true);
    expect(hooks.keys()).toEqual({ distinct: 4, duplicates: 0 });
    for (const request of webhooks) {
      expect(request.idempotencyKey).toBe(request.event.id);
      expect(request.event.data.booking.id).toBe(bookingId);
    }
    expect(smtp.to(customer.email)).toHaveLength(4);
    const subjects = emails.map((email) => email.subject).join(' | ');
    expect(subjects).toMatch(/held/i);
    expect(subjects).toMatch(/confirmed/i);
    expect(subjects).toMatch(/cancelled/i);
    expect(subjects).toMatch(/refund/i);
    for (const email of emails) expect(email.text).toContain('A1, A2');
  });

  it('a payment voided after a lost seat: the customer is told why, on every channel', async () => {
    const eventId = await createEvent(stack.api);
    const alice = await registerCustomer(stack.api);
    const bob = await registerCustomer(stack.api);
    hooks.requests.length = 0;
    await subscribe(alice.token);
    const aliceBooking = await stack.hold(alice, eventId, ['A1']);

    const paying = stack.pay(alice, aliceBooking, 'pm_card_slow');
    await sleep(3200);
    const bobBooking = await stack.hold(bob, eventId, ['A1']);
    expect((await stack.pay(bob, bobBooking)).status).toBe(201);
    expect((await paying).status).toBe(409);

    const voided = await hooks.waitFor('the payment.voided webhook', (all) =>
      all.some((r) => r.event.type === 'payment.voided'),
    );
    const webhook = voided.find((r) => r.event.type === 'payment.voided')!;
    expect(webhook.signatureProblem).toBeNull();
    expect(webhook.event.data.payment.payment).toMatchObject({
      status: 'voided',
      failureCode: 'seat_lost',
    });
    const notifications = await eventually('the voided notification', async () => {
      const response = await stack.api.get('/notifications', { token: alice.token });
      return (
        response.body.some((n: { type: string }) => n.type === 'payment.voided') && response.body
      );
    });
    const inApp = notifications.find((n: { type: string }) => n.type === 'payment.voided');
    expect(inApp.body).toMatch(/voided/i);
    expect(inApp.body).toMatch(/hold lapsed/);
    const email = await eventually('the voided email', async () =>
      smtp.to(alice.email).find((e) => /voided/i.test(e.subject) || /voided/i.test(e.text)),
    );
    expect(email.text).toMatch(/hold lapsed/);
  });
});

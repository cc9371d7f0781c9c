import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { AppConfigService } from '../apps/api/src/config/app-config.service';
import { DeliveryRepository } from '../apps/api/src/modules/notification/delivery.repository';
import { EmailTransport } from '../apps/api/src/modules/notification/email/email-transport.service';
import { EmailChannel } from '../apps/api/src/modules/notification/email/email.channel';
import { NotificationMetrics } from '../apps/api/src/modules/notification/notification.metrics';
import type {
  ClaimedMessage,
  DueDelivery,
} from '../apps/api/src/modules/notification/outbox-channel';
import { createEvent, type Customer, registerCustomer } from './support/fixtures';
import { eventually, PaymentStack } from './support/payment-stack';
import { SmtpReceiver } from './support/smtp-receiver';
import { TestApp } from './support/test-app';

const EMAIL_OFF = 'SMTP_URL not set: email notifications are off';

interface OutboxRow {
  id: string;
  topic: string;
  customer_id: string | null;
  aggregate_id: string | null;
  payload: Record<string, unknown>;
  attempts: number;
  created_at: Date;
}

async function outboxOf(db: DataSource, bookingId: string): Promise<OutboxRow[]> {
  return db.query<OutboxRow[]>(
    `SELECT id, topic, customer_id, aggregate_id, payload, attempts, created_at
     FROM outbox_messages WHERE aggregate_id = $1 ORDER BY created_at, id`,
    [bookingId],
  );
}

function claimed(row: OutboxRow): ClaimedMessage {
  return {
    id: row.id,
    topic: row.topic,
    customerId: row.customer_id,
    aggregateId: row.aggregate_id,
    payload: row.payload,
    attempts: row.attempts,
    createdAt: row.created_at,
  };
}

function dueDelivery(messageId: string, target: string): DueDelivery {
  return { id: randomUUID(), messageId, channel: 'email', target, endpointId: null, attempts: 0 };
}

describe('email notifications (real SMTP receiver, PostgreSQL, Redis, gateway)', () => {
  describe('with SMTP_URL pointing at a receiver', () => {
    let smtp: SmtpReceiver;
    let stack: PaymentStack;
    let db: DataSource;
    let eventId: string;
    let customer: Customer;
    /** The booking of the hold → pay → confirm → cancel run, shared by the first two tests. */
    let bookingId: string;

    beforeAll(async () => {
      smtp = await SmtpReceiver.start();
      stack = await PaymentStack.start({
        SMTP_URL: smtp.url,
        SMTP_FROM: 'Seatlock Tickets <tickets@seatlock.test>',
        NOTIFY_POLL_MS: '100',
        NOTIFY_RETRY_BASE_MS: '200',
      });
      db = stack.api.app.get(DataSource);
      eventId = await createEvent(stack.api, [
        { name: 'Floor', rows: 4, seatsPerRow: 10, priceCents: 4200 },
      ]);
      customer = await registerCustomer(stack.api);
    });

    afterAll(async () => {
      await stack?.close();
      await smtp?.close();
    });

    it('hold → pay → confirm → cancel: one email delivery per transition, to the customer, written with the fan-out', async () => {
      bookingId = await stack.hold(customer, eventId, ['A1', 'A2']);
      const paid = await stack.pay(customer, bookingId, 'pm_card_visa');
      expect(paid.status).toBe(201);
      expect(paid.body.booking.status).toBe('confirmed');
      const cancelled = await stack.api.delete(`/bookings/${bookingId}`, { token: customer.token });
      expect(cancelled.body.status).toBe('cancelled');

      const messages = await eventually('four dispatched outbox messages', async () => {
        const rows = await db.query<{ id: string; topic: string; status: string }[]>(
          `SELECT id, topic, status FROM outbox_messages WHERE aggregate_id = $1`,
          [bookingId],
        );
        return rows.length === 4 && rows.every((r) => r.status === 'sent') && rows;
      });
      expect(messages.map((m) => m.topic).sort()).toEqual([
        'booking.cancelled',
        'booking.confirmed',
        'booking.held',
        'payment.refunded',
      ]);
      const deliveries = await db.query<{ message_id: string; target: string }[]>(
        `SELECT message_id, target FROM notification_deliveries
         WHERE channel = 'email' AND message_id = ANY($1::uuid[])`,
        [messages.map((m) => m.id)],
      );
      // Exactly one per message (UNIQUE(message_id, channel, target) and one address per customer).
      expect(deliveries.map((d) => d.message_id).sort()).toEqual(messages.map((m) => m.id).sort());
      expect(deliveries.every((d) => d.target === customer.email)).toBe(true);
    });

    it('the delivery worker sends exactly one email per transition, with the right content and a stable Message-ID', async () => {
      expect(bookingId).toBeDefined();
      const outbox = await outboxOf(db, bookingId);
      const about = () => smtp.to(customer.email).filter((m) => m.text.includes(bookingId));
      await smtp.waitFor(() => about().length >= 4, 30_000);
      // Exactly one each, even after waiting for stragglers.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const received = about();
      expect(received).toHaveLength(4);

      const byTopic = Object.fromEntries(received.map((m) => [m.headers['x-seatlock-topic'], m]));
      expect(Object.keys(byTopic).sort()).toEqual([
        'booking.cancelled',
        'booking.confirmed',
        'booking.held',
        'payment.refunded',
      ]);
      for (const row of outbox) {
        const email = byTopic[row.topic];
        expect(email.to).toEqual([customer.email]);
        expect(email.from).toBe('tickets@seatlock.test');
        expect(email.headers.from).toBe('Seatlock Tickets <tickets@seatlock.test>');
        expect(email.headers['x-seatlock-message-id']).toBe(row.id);
        expect(email.headers['message-id']).toBe(`<${row.id}@seatlock.test>`);
        expect(email.text).toContain('Seats:   A1, A2');
        expect(email.text).toContain('Amount:  84.00 EUR');
      }
      expect(byTopic['booking.held'].subject).toBe('Seats held (A1, A2)');
      expect(byTopic['booking.held'].text).toContain('A1, A2 held for you (84.00 EUR)');
      expect(byTopic['booking.held'].text).toContain('Status:  held');
      expect(byTopic['booking.confirmed'].subject).toBe('Booking confirmed (A1, A2)');
      expect(byTopic['booking.confirmed'].text).toContain('A1, A2 booked and paid (84.00 EUR)');
      expect(byTopic['booking.confirmed'].text).toContain('Status:  confirmed');
      expect(byTopic['booking.cancelled'].subject).toBe('Booking cancelled (A1, A2)');
      expect(byTopic['booking.cancelled'].text).toContain('Status:  cancelled');
      expect(byTopic['payment.refunded'].subject).toBe('Payment refunded (A1, A2)');
      expect(byTopic['payment.refunded'].text).toContain('84.00 EUR for A1, A2 refunded');

      const delivered = await eventually('the deliveries recorded as delivered', async () => {
        const rows = await db.query<{ status: string; attempts: number }[]>(
          `SELECT status, attempts FROM notification_deliveries
           WHERE channel = 'email' AND message_id = ANY($1::uuid[])`,
          [outbox.map((m) => m.id)],
        );
        return rows.length === 4 && rows.every((r) => r.status === 'delivered') && rows;
      });
      expect(delivered).toHaveLength(4);
    });

    it('send(), called through Nest DI, hands the email to the SMTP server: 250, subject, text, headers; a resend keeps the Message-ID', async () => {
      const channel = stack.api.app.get(EmailChannel);
      const booking = await stack.hold(customer, eventId, ['C1']);
      const held = await eventually('the booking.held message', async () => {
        const rows = await outboxOf(db, booking);
        return rows.find((r) => r.topic === 'booking.held');
      });
      // A target of its own, so copies the delivery worker sends to the customer do not count.
      const target = `direct-${randomUUID()}@example.test`;
      const delivery = dueDelivery(held.id, target);

      const first = await channel.send(delivery, claimed(held), new AbortController().signal);
      const again = await channel.send(
        { ...delivery, attempts: 1 },
        claimed(held),
        new AbortController().signal,
      );

      for (const outcome of [first, again]) {
        expect(outcome).toMatchObject({ delivered: true, statusCode: 250 });
        expect(outcome.latencyMs).toBeGreaterThanOrEqual(0);
        expect(outcome.gone).toBeUndefined();
      }
      const received = smtp.to(target);
      expect(received).toHaveLength(2);
      const [email, resent] = received;
      expect(email.subject).toBe('Seats held (C1)');
      expect(email.text).toContain('C1 held for you (42.00 EUR)');
      expect(email.text).toContain(`Booking: ${booking}`);
      expect(email.text).toContain('Status:  held');
      expect(email.headers['message-id']).toBe(`<${held.id}@seatlock.test>`);
      expect(email.headers['x-seatlock-message-id']).toBe(held.id);
      expect(email.headers['auto-submitted']).toBe('auto-generated');
      expect(email.headers['content-type']).toMatch(/^text\/plain/);
      // The date is the transition's, not the attempt's.
      expect(Date.parse(email.headers.date)).toBe(
        Math.floor(held.created_at.getTime() / 1000) * 1000,
      );
      // The same key on every attempt: the receiver can drop the second copy.
      expect(resent.headers['message-id']).toBe(email.headers['message-id']);
      expect(resent.headers.date).toBe(email.headers.date);
    });

    it.each([
      { code: 550, message: '5.1.1 Mailbox does not exist' },
      { code: 451, message: '4.7.1 Greylisted, try again later' },
    ])(
      'a receiver that refuses the recipient with $code: not delivered, and the outcome has the code and reply',
      async ({ code, message }) => {
        const channel = stack.api.app.get(EmailChannel);
        const [held] = await outboxOf(db, bookingId);
        const target = `refused-${code}-${randomUUID()}@example.test`;
        smtp.refuseRecipient = (address) => (address === target ? { code, message } : null);
        try {
          const outcome = await channel.send(
            dueDelivery(held.id, target),
            claimed(held),
            new AbortController().signal,
          );

          expect(outcome).toMatchObject({ delivered: false, statusCode: code });
          expect(outcome.error).toContain('RCPT TO');
          expect(outcome.error).toContain(`${code} ${message}`);
          // A rejection is retried by the worker and dead-lettered in the end, never `gone`.
          expect(outcome.gone).toBeUndefined();
          expect(smtp.refused).toContainEqual({ to: target, code });
          expect(smtp.to(target)).toEqual([]);
        } finally {
          smtp.refuseRecipient = () => null;
        }
      },
    );

    it('an unreachable SMTP server: not delivered, no status code, the connection error named', async () => {
      // A port nobody listens on (a receiver's, once closed). A channel of its own rather than a
      // second API, whose dispatcher and worker would compete for this test's messages.
      const closed = await SmtpReceiver.start();
      await closed.close();
      const settings: Record<string, string> = {
        SMTP_URL: closed.url,
        SMTP_FROM: 'Seatlock <no-reply@seatlock.test>',
      };
      const transport = new EmailTransport({
        get: (key: string) => settings[key],
      } as unknown as AppConfigService);
      const channel = new EmailChannel(
        transport,
        stack.api.app.get(DeliveryRepository),
        stack.api.app.get(NotificationMetrics),
      );
      try {
        const [held] = await outboxOf(db, bookingId);
        const outcome = await channel.send(
          dueDelivery(held.id, customer.email),
          claimed(held),
          new AbortController().signal,
        );

        expect(outcome.delivered).toBe(false);
        expect(outcome.statusCode).toBeUndefined();
        expect(outcome.error).toMatch(/ECONNREFUSED/);
      } finally {
        transport.onApplicationShutdown();
      }
    });
    it('a 5xx rejection through the delivery worker: the attempt is logged with its code, retried, then delivered', async () => {
      const refusedCustomer = await registerCustomer(stack.api);
      smtp.refuseRecipient = (address) =>
        address === refusedCustomer.email ? { code: 550, message: '5.2.2 Mailbox full' } : null;
      let messageId: string;
      try {
        const booking = await stack.hold(refusedCustomer, eventId, ['D1']);
        const attempt = await eventually('a refused email attempt', async () => {
          const [row] = await db.query<
            { message_id: string; status_code: number; error: string; status: string }[]
          >(
            `SELECT d.message_id, a.status_code, a.error, d.status
             FROM delivery_attempts a
             JOIN notification_deliveries d ON d.id = a.delivery_id
             JOIN outbox_messages o ON o.id = d.message_id
             WHERE d.channel = 'email' AND o.aggregate_id = $1
             ORDER BY a.id LIMIT 1`,
            [booking],
          );
          return row;
        });
        messageId = attempt.message_id;
        expect(attempt.status_code).toBe(550);
        expect(attempt.error).toContain('550 5.2.2 Mailbox full');
        // Not `gone`: still pending, retried with backoff.
        expect(attempt.status).toBe('pending');
      } finally {
        smtp.refuseRecipient = () => null;
      }
      // The mailbox has room again: the next attempt goes through, once.
      await smtp.waitFor(() => smtp.to(refusedCustomer.email).length >= 1, 15_000);
      const delivered = await eventually('the delivery recorded as delivered', async () => {
        const [row] = await db.query<{ status: string; attempts: number }[]>(
          `SELECT status, attempts FROM notification_deliveries
           WHERE channel = 'email' AND message_id = $1`,
          [messageId],
        );
        return row?.status === 'delivered' && row;
      });
      expect(delivered.attempts).toBeGreaterThanOrEqual(2);
      expect(smtp.to(refusedCustomer.email)).toHaveLength(1);
      expect(smtp.to(refusedCustomer.email)[0].headers['x-seatlock-message-id']).toBe(messageId);
    });

    it('the transport keeps one pooled connection open between messages and closes it at shutdown', async () => {
      const own = await SmtpReceiver.start();
      const settings: Record<string, string> = {
        SMTP_URL: own.url,
        SMTP_FROM: 'Seatlock <no-reply@seatlock.test>',
      };
      const transport = new EmailTransport({
        get: (key: string) => settings[key],
      } as unknown as AppConfigService);
      try {
        for (let i = 0; i < 3; i++) {
          await transport.send({ to: 'pool@example.test', subject: `n${i}`, text: 'x' });
        }
        expect(own.messages).toHaveLength(3);
        expect(own.openConnections).toBe(1);

        transport.onApplicationShutdown();
        await eventually(
          'the pooled connection closed',
          async () => own.openConnections === 0,
          5000,
        );
      } finally {
        transport.onApplicationShutdown();
        await own.close();
      }
    });
  });

  describe('without SMTP_URL', () => {
    let app: TestApp;
    let logged: jest.SpyInstance;

    const inherited = process.env.SMTP_URL;

    beforeAll(async () => {
      // @nestjs/config copies an app's validated settings into process.env, and ConfigService.get
      // falls back to process.env for a setting the app's own config lacks: the SMTP_URL of the
      // apps above (or of this shell) would switch email on here. Production runs one app per process.
      delete process.env.SMTP_URL;
      logged = jest.spyOn(Logger.prototype, 'log');
      app = await TestApp.start({ NOTIFY_POLL_MS: '100' });
    });

    afterAll(async () => {
      logged?.mockRestore();
      await app?.close();
      if (inherited !== undefined) process.env.SMTP_URL = inherited;
    });

    it('says once at start that email is off, and writes no email deliveries', async () => {
      const offLines = logged.mock.calls.filter(([message]) => message === EMAIL_OFF);
      expect(offLines).toHaveLength(1);

      const db = app.app.get(DataSource);
      const eventId = await createEvent(app);
      const customer = await registerCustomer(app);
      const held = await app.post(
        '/bookings',
        { eventId, seatIds: ['A1'] },
        { token: customer.token },
      );
      expect(held.status).toBe(201);
      const released = await app.delete(`/bookings/${held.body.id}`, { token: customer.token });
      expect(released.body.status).toBe('released');

      // Both messages dispatched (the in-app notifications are there) ...
      const messages = await eventually('two dispatched outbox messages', async () => {
        const rows = await db.query<{ id: string; status: string }[]>(
          `SELECT id, status FROM outbox_messages WHERE aggregate_id = $1`,
          [held.body.id],
        );
        return rows.length === 2 && rows.every((r) => r.status === 'sent') && rows;
      });
      const [{ count: notifications }] = await db.query<{ count: number }[]>(
        `SELECT count(*)::int AS count FROM notifications WHERE message_id = ANY($1::uuid[])`,
        [messages.map((m) => m.id)],
      );
      expect(notifications).toBe(2);
      // ... and not one email delivery for them.
      const [{ count: emails }] = await db.query<{ count: number }[]>(
        `SELECT count(*)::int AS count FROM notification_deliveries
         WHERE channel = 'email' AND message_id = ANY($1::uuid[])`,
        [messages.map((m) => m.id)],
      );
      expect(emails).toBe(0);
    });
  });
});

import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { BuiltApp } from './support/built-app';
import { createEvent, type Customer, registerCustomer } from './support/fixtures';
import { eventually, PaymentStack } from './support/payment-stack';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './support/test-env';

const admin = { token: TEST_ADMIN_TOKEN };

interface Notification {
  id: string;
  type: string;
  bookingId: string | null;
  title: string;
  body: string;
  createdAt: string;
  readAt: string | null;
}

/** A booking.held payload like the one BookingService writes, for messages inserted by SQL. */
function heldPayload(booking: Record<string, unknown>): string {
  return JSON.stringify({ booking });
}

describe('notifications: outbox dispatcher and in-app channel (real PostgreSQL, Redis, gateway)', () => {
  describe('in-app channel, dead letter and admin routes (one API in this process)', () => {
    let stack: PaymentStack;
    let db: DataSource;
    let eventId: string;
    let customer: Customer;

    beforeAll(async () => {
      stack = await PaymentStack.start(
        {
          // Short holds so a late asynchronous payment loses its seat; small retry settings so the
          // dead letter is reached in about a second.
          HOLD_TTL_SECONDS: '2',
          NOTIFY_POLL_MS: '100',
          NOTIFY_RETRY_BASE_MS: '200',
          NOTIFY_MAX_ATTEMPTS: '3',
        },
        { GATEWAY_ASYNC_DELAY_MS: '3500' },
      );
      db = stack.api.app.get(DataSource);
      eventId = await createEvent(stack.api, [
        { name: 'Floor', rows: 4, seatsPerRow: 10, priceCents: 4200 },
      ]);
      customer = await registerCustomer(stack.api);
    });

    afterAll(async () => {
      await stack?.close();
    });

    async function notificationsOf(who: Customer, bookingId?: string): Promise<Notification[]> {
      const response = await stack.api.get('/notifications?limit=100', { token: who.token });
      expect(response.status).toBe(200);
      return (response.body as Notification[]).filter(
        (n) => !bookingId || n.bookingId === bookingId,
      );
    }

    it('hold → pay → confirm → cancel: exactly one notification per transition, newest first, with seats, amount and status; read marks', async () => {
      const bookingId = await stack.hold(customer, eventId, ['A1', 'A2']);
      const paid = await stack.pay(customer, bookingId, 'pm_card_visa');
      expect(paid.status).toBe(201);
      expect(paid.body.booking.status).toBe('confirmed');
      const cancelled = await stack.api.delete(`/bookings/${bookingId}`, { token: customer.token });
      expect(cancelled.body.status).toBe('cancelled');

      const notifications = await eventually('four notifications for the booking', async () => {
        const found = await notificationsOf(customer, bookingId);
        return found.length >= 4 && found;
      });

      // Exactly one per transition, even after waiting for stragglers.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await notificationsOf(customer, bookingId)).map((n) => n.type)).toEqual([
        'payment.refunded',
        'booking.cancelled',
        'booking.confirmed',
        'booking.held',
      ]);
      const byType = Object.fromEntries(notifications.map((n) => [n.type, n]));
      expect(byType['booking.held']).toMatchObject({
        title: 'Seats held',
        bookingId,
        readAt: null,
      });
      expect(byType['booking.held'].body).toContain('A1, A2 held for you (84.00 EUR)');
      expect(byType['booking.held'].body).toContain('Booking status: held.');
      expect(byType['booking.confirmed'].body).toContain('A1, A2 booked and paid (84.00 EUR)');
      expect(byType['booking.confirmed'].body).toContain('Booking status: confirmed.');
      expect(byType['booking.cancelled'].body).toContain('Booking status: cancelled.');
      expect(byType['payment.refunded'].body).toContain('84.00 EUR for A1, A2 refunded');
      const times = notifications.map((n) => Date.parse(n.createdAt));
      expect([...times].sort((a, b) => b - a)).toEqual(times);
      // In the database too: every message of the booking sent, one notification each.
      const rows = await db.query<{ status: string; notifications: number }[]>(
        `SELECT o.status, (SELECT count(*)::int FROM notifications n WHERE n.message_id = o.id) AS notifications
         FROM outbox_messages o WHERE o.aggregate_id = $1`,
        [bookingId],
      );
      expect(rows).toHaveLength(4);
      expect(rows.every((r) => r.status === 'sent' && r.notifications === 1)).toBe(true);

      // Read marks: idempotent, counted by ?unread=true, not visible to another customer.
      const unreadBefore = await stack.api.get('/notifications?unread=true&limit=2', {
        token: customer.token,
      });
      const held = byType['booking.held'];
      const read = await stack.api.post(`/notifications/${held.id}/read`, undefined, {
        token: customer.token,
      });
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ id: held.id, type: 'booking.held' });
      expect(Date.parse(read.body.readAt)).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const again = await stack.api.post(`/notifications/${held.id}/read`, undefined, {
        token: customer.token,
      });
      expect(again.status).toBe(200);
      expect(again.body.readAt).toBe(read.body.readAt);
      const unreadAfter = await stack.api.get('/notifications?unread=true&limit=2', {
        token: customer.token,
      });
      expect(Number(unreadAfter.headers['x-total-count'])).toBe(
        Number(unreadBefore.headers['x-total-count']) - 1,
      );
      expect(unreadAfter.body.every((n: Notification) => n.readAt === null)).toBe(true);
      expect(unreadAfter.headers.link).toContain('unread=true');
      expect(unreadAfter.headers.link).toContain('rel="next"');

      const other = await registerCustomer(stack.api);
      const foreign = await stack.api.post(`/notifications/${held.id}/read`, undefined, {
        token: other.token,
      });
      expect(foreign.status).toBe(404);
      expect(foreign.body.code).toBe('NOTIFICATION.NOT_FOUND');
      expect(await notificationsOf(other)).toEqual([]);
    });

    it('a payment that lost its seat is voided, and the notification says so', async () => {
      const bookingId = await stack.hold(customer, eventId, ['B1']);
      // The gateway authorizes after 3.5 s, the hold lapses after 2 s: the seat is lost.
      const pending = await stack.pay(customer, bookingId, 'pm_card_async');
      expect(pending.status).toBe(201);

      const voided = await eventually(
        'the payment.voided notification',
        async () =>
          (await notificationsOf(customer, bookingId)).find((n) => n.type === 'payment.voided'),
        20_000,
      );

      expect(voided.title).toBe('Payment voided: seat lost');
      expect(voided.body).toContain('voided because the seat was lost');
      expect(voided.body).toContain('42.00 EUR');
      expect(voided.body).toContain('nothing was charged');
      const types = (await notificationsOf(customer, bookingId)).map((n) => n.type);
      expect(types).toContain('booking.expired');
      expect(types.filter((t) => t === 'payment.voided')).toHaveLength(1);
    }, 30_000);

    it('a message whose fan-out keeps failing is dead after NOTIFY_MAX_ATTEMPTS with backoff; admin retry sends it once fixed', async () => {
      const bookingId = await stack.hold(customer, eventId, ['C1']);
      const booking = (await stack.api.get(`/bookings/${bookingId}`, { token: customer.token }))
        .body;
      // A customer that does not exist: notifications.customer_id references customers, so the
      // in-app insert fails for real (a foreign-key violation) on every attempt.
      const ghost = randomUUID();
      const messageId = randomUUID();
      const started = Date.now();
      await db.transaction(async (manager) => {
        await manager.query(
          `INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
           VALUES ($1, 'booking.held', $2, $3, $4)`,
          [messageId, ghost, bookingId, heldPayload(booking)],
        );
        await manager.query(`SELECT pg_notify('outbox', '')`);
      });

      const dead = await eventually(
        'the message dead-lettered',
        async () => {
          const [row] = await db.query(
            `SELECT status, attempts, last_error FROM outbox_messages WHERE id = $1`,
            [messageId],
          );
          return row.status === 'dead' && row;
        },
        10_000,
      );
      const elapsed = Date.now() - started;

      expect(dead.attempts).toBe(3);
      expect(dead.last_error).toMatch(/foreign key/);
      // Backoff: at least half of 200 ms, then half of 400 ms, between the three attempts.
      expect(elapsed).toBeGreaterThanOrEqual(300);
      const listed = await stack.api.get('/admin/outbox?status=dead&limit=100', admin);
      expect(listed.status).toBe(200);
      expect(Number(listed.headers['x-total-count'])).toBeGreaterThanOrEqual(1);
      expect(listed.body.every((m: { status: string }) => m.status === 'dead')).toBe(true);
      expect(listed.body.find((m: { id: string }) => m.id === messageId)).toMatchObject({
        topic: 'booking.held',
        customerId: ghost,
        aggregateId: bookingId,
        attempts: 3,
        lastError: expect.stringMatching(/foreign key/),
      });
      const metrics = await stack.api.get('/metrics');
      expect(metrics.body).toMatch(/seatlock_outbox_messages\{status="dead"\} [1-9]/);
      expect(metrics.body).toMatch(/seatlock_outbox_messages\{status="sent"\} [1-9]/);
      expect(metrics.body).toMatch(/seatlock_outbox_failures_total\{outcome="dead"\} [1-9]/);

      // The cause fixed (the customer exists now), the operator retries: delivered once.
      await db.query(
        `INSERT INTO customers (id, email, name, token_hash) VALUES ($1, $2, 'Ghost', $3)`,
        [ghost, `ghost-${ghost}@example.test`, ghost.replace(/-/g, '').padEnd(64, '0')],
      );
      const retried = await stack.api.post(`/admin/outbox/${messageId}/retry`, undefined, admin);
      expect(retried.status).toBe(200);
      expect(retried.body).toMatchObject({ id: messageId, status: 'pending', attempts: 0 });
      await eventually('the retried message sent', async () => {
        const [row] = await db.query(`SELECT status FROM outbox_messages WHERE id = $1`, [
          messageId,
        ]);
        return row.status === 'sent';
      });
      const [{ count }] = await db.query(
        `SELECT count(*)::int AS count FROM notifications WHERE message_id = $1 AND customer_id = $2`,
        [messageId, ghost],
      );
      expect(count).toBe(1);

      const notDead = await stack.api.post(`/admin/outbox/${messageId}/retry`, undefined, admin);
      expect(notDead.status).toBe(409);
      expect(notDead.body).toMatchObject({ code: 'OUTBOX.NOT_DEAD', currentStatus: 'sent' });
      const unknown = await stack.api.post(`/admin/outbox/${randomUUID()}/retry`, undefined, admin);
      expect(unknown.status).toBe(404);
      expect(unknown.body.code).toBe('OUTBOX.NOT_FOUND');
    });

    describe('bad input', () => {
      function fields(body: { errors?: { field: string }[] }): string[] {
        return (body.errors ?? []).map((e) => e.field);
      }

      it('non-UUID ids are 400 naming the field', async () => {
        const read = await stack.api.post('/notifications/not-a-uuid/read', undefined, {
          token: customer.token,
        });
        const retry = await stack.api.post('/admin/outbox/123/retry', undefined, admin);

        expect(read.status).toBe(400);
        expect(read.headers['content-type']).toContain('application/problem+json');
        expect(fields(read.body)).toEqual(['id']);
        expect(retry.status).toBe(400);
        expect(fields(retry.body)).toEqual(['id']);
      });

      it('unknown filters and bad pages are 400 naming them', async () => {
        const status = await stack.api.get('/admin/outbox?status=lost', admin);
        const unread = await stack.api.get('/notifications?unread=maybe', {
          token: customer.token,
        });
        const page = await stack.api.get('/notifications?limit=0&offset=-1', {
          token: customer.token,
        });
        const extra = await stack.api.get('/notifications?colour=red', { token: customer.token });

        expect(status.status).toBe(400);
        expect(fields(status.body)).toEqual(['status']);
        expect(unread.status).toBe(400);
        expect(fields(unread.body)).toEqual(['unread']);
        expect(page.status).toBe(400);
        expect(fields(page.body).sort()).toEqual(['limit', 'offset']);
        expect(extra.status).toBe(400);
      });

      it('no token is 401; a customer token on an admin route is 403', async () => {
        expect((await stack.api.get('/notifications')).status).toBe(401);
        expect((await stack.api.post(`/notifications/${randomUUID()}/read`)).status).toBe(401);
        expect((await stack.api.get('/admin/outbox')).status).toBe(401);
        const forbidden = await stack.api.get('/admin/outbox?status=dead', {
          token: customer.token,
        });
        expect(forbidden.status).toBe(403);
        expect(forbidden.body.code).toBe('AUTH.FORBIDDEN');
        expect(
          (await stack.api.post(`/admin/outbox/${randomUUID()}/retry`, undefined, customer)).status,
        ).toBe(403);
      });
    });
  });

  describe('built API processes on one database and Redis', () => {
    const apps: BuiltApp[] = [];
    let db: Client;

    function start(env: Record<string, string> = {}): Promise<BuiltApp> {
      return BuiltApp.start({
        DATABASE_URL: testDatabaseUrl(),
        REDIS_URL: testRedisUrl(),
        ADMIN_TOKEN: TEST_ADMIN_TOKEN,
        LOG_LEVEL: 'warn',
        MIGRATIONS_RUN: 'false',
        RATE_LIMIT_PER_MINUTE: '0',
        ...env,
      }).then((app) => {
        apps.push(app);
        return app;
      });
    }

    async function call(
      app: BuiltApp,
      method: string,
      path: string,
      body?: unknown,
      token?: string,
    ) {
      const response = await fetch(`${app.url}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return {
        status: response.status,
        headers: response.headers,
        body: text ? JSON.parse(text) : null,
      };
    }

    /** A customer with one held booking, made through `app`. */
    async function customerWithBooking(app: BuiltApp, seat = 'A1') {
      const registered = await call(app, 'POST', '/customers', {
        email: `n-${randomUUID()}@example.test`,
        name: 'Notified',
      });
      const event = await call(
        app,
        'POST',
        '/admin/events',
        {
          name: `Event ${randomUUID().slice(0, 8)}`,
          startsAt: '2027-06-01T19:30:00Z',
          venue: 'Test Hall',
          currency: 'EUR',
          sections: [{ name: 'Floor', rows: 1, seatsPerRow: 5, priceCents: 5000 }],
        },
        TEST_ADMIN_TOKEN,
      );
      const held = await call(
        app,
        'POST',
        '/bookings',
        { eventId: event.body.id, seatIds: [seat] },
        registered.body.token,
      );
      expect(held.status).toBe(201);
      return { customer: registered.body, booking: held.body };
    }

    beforeAll(async () => {
      db = new Client({ connectionString: testDatabaseUrl() });
      await db.connect();
    });

    afterEach(async () => {
      await Promise.all(apps.splice(0).map((app) => app.stop()));
    });

    afterAll(async () => {
      await db?.end();
    });

    it('two API processes dispatch 1,000 messages committed in one transaction: each exactly once', async () => {
      const [first, second] = await Promise.all([
        start({ NOTIFY_BATCH_SIZE: '50' }),
        start({ NOTIFY_BATCH_SIZE: '50' }),
      ]);
      const { customer, booking } = await customerWithBooking(first);

      const started = Date.now();
      await db.query('BEGIN');
      const inserted = await db.query<{ id: string }>(
        `INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
         SELECT gen_random_uuid(), 'booking.held', $1, $2, $3::jsonb FROM generate_series(1, 1000)
         RETURNING id`,
        [customer.id, booking.id, heldPayload(booking)],
      );
      await db.query(`SELECT pg_notify('outbox', '')`);
      await db.query('COMMIT');
      const ids = inserted.rows.map((row) => row.id);

      await eventually(
        'all 1,000 messages sent',
        async () => {
          const { rows } = await db.query(
            `SELECT count(*)::int AS sent FROM outbox_messages WHERE id = ANY($1) AND status = 'sent'`,
            [ids],
          );
          return rows[0].sent === 1000;
        },
        60_000,
      );
      const elapsedMs = Date.now() - started;

      const { rows: notified } = await db.query(
        `SELECT count(*)::int AS total, count(DISTINCT message_id)::int AS messages
         FROM notifications WHERE message_id = ANY($1)`,
        [ids],
      );
      expect(notified[0]).toEqual({ total: 1000, messages: 1000 });
      const { rows: perInstance } = await db.query(
        `SELECT dispatched_by, count(*)::int AS count FROM outbox_messages
         WHERE id = ANY($1) GROUP BY dispatched_by ORDER BY dispatched_by`,
        [ids],
      );
      const { rows: attempts } = await db.query(
        `SELECT max(attempts)::int AS max FROM outbox_messages WHERE id = ANY($1)`,
        [ids],
      );
      expect(attempts[0].max).toBe(0);
      // Both instances took part (PostgreSQL split the batches between them).
      expect(perInstance).toHaveLength(2);
      let duplicates = 0;
      for (const app of [first, second]) {
        const text = await (await fetch(`${app.url}/metrics`)).text();
        for (const match of text.matchAll(/^seatlock_outbox_duplicates_total\{[^}]*\} (\d+)/gm)) {
          duplicates += Number(match[1]);
        }
      }
      expect(duplicates).toBe(0);
      const page = await call(first, 'GET', '/notifications?limit=1', undefined, customer.token);
      expect(page.headers.get('x-total-count')).toBe('1001');
      console.log(
        `1,000 outbox messages, 2 API processes: all sent in ${elapsedMs} ms; per instance ${perInstance
          .map((r) => r.count)
          .join(' + ')}; duplicates ${duplicates}`,
      );
    }, 90_000);

    it('the API killed (SIGKILL) after the commit, before its dispatch finished: the message is dispatched after a restart', async () => {
      const env = { NOTIFY_LEASE_MS: '2000', NOTIFY_POLL_MS: '200' };
      const doomed = await start(env);
      const registered = await call(doomed, 'POST', '/customers', {
        email: `k-${randomUUID()}@example.test`,
        name: 'Killed',
      });
      const event = await call(
        doomed,
        'POST',
        '/admin/events',
        {
          name: `Event ${randomUUID().slice(0, 8)}`,
          startsAt: '2027-06-01T19:30:00Z',
          venue: 'Test Hall',
          currency: 'EUR',
          sections: [{ name: 'Floor', rows: 1, seatsPerRow: 5, priceCents: 5000 }],
        },
        TEST_ADMIN_TOKEN,
      );
      // Hold the in-app insert back (a SHARE lock blocks writers only), so the dispatcher is stuck
      // between claiming the message and committing its fan-out when the process dies.
      const blocker = new Client({ connectionString: testDatabaseUrl() });
      await blocker.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query('LOCK TABLE notifications IN SHARE MODE');

        const held = await call(
          doomed,
          'POST',
          '/bookings',
          { eventId: event.body.id, seatIds: ['A1'] },
          registered.body.token,
        );
        expect(held.status).toBe(201);
        const bookingId = held.body.id;
        await eventually('the dispatcher waiting on its fan-out', async () => {
          const { rows } = await db.query(
            `SELECT count(*)::int AS waiting FROM pg_locks
             WHERE relation = 'notifications'::regclass AND NOT granted`,
          );
          return rows[0].waiting > 0;
        });

        await doomed.kill();

        const { rows: claimed } = await db.query(
          `SELECT status, claimed_by IS NOT NULL AS claimed FROM outbox_messages WHERE aggregate_id = $1`,
          [bookingId],
        );
        expect(claimed).toEqual([{ status: 'pending', claimed: true }]);
        await blocker.query('COMMIT');

        await start(env);

        const [row] = await eventually('the message dispatched after the restart', async () => {
          const { rows } = await db.query(
            `SELECT o.status, (SELECT count(*)::int FROM notifications n WHERE n.message_id = o.id) AS notifications
             FROM outbox_messages o WHERE o.aggregate_id = $1 AND o.status = 'sent'`,
            [bookingId],
          );
          return rows.length > 0 && rows;
        });
        expect(row).toEqual({ status: 'sent', notifications: 1 });
      } finally {
        await blocker.query('ROLLBACK').catch(() => undefined);
        await blocker.end();
      }
    }, 60_000);
  });
});

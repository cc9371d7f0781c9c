import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { webhookSignatureProblem } from '../apps/api/src/common/http/webhook-signature';
import { BuiltApp } from './support/built-app';
import { createEvent, type Customer, registerCustomer } from './support/fixtures';
import { OutboundWebhookReceiver } from './support/outbound-webhook-receiver';
import { eventually, PaymentStack } from './support/payment-stack';
import { TestApp } from './support/test-app';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './support/test-env';

const admin = { token: TEST_ADMIN_TOKEN };
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Attempt {
  attempt: number;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  at: string;
}

interface Delivery {
  id: string;
  messageId: string;
  eventType: string;
  status: string;
  attemptCount: number;
  attempts: Attempt[];
}

function fields(body: { errors?: { field: string }[] }): string[] {
  return (body.errors ?? []).map((e) => e.field);
}

describe('outbound webhooks: endpoints API, signed deliveries, retries, dead letter (real PostgreSQL, Redis, HTTP receivers)', () => {
  describe('one API in this process, private networks allowed (receivers are on loopback)', () => {
    let stack: PaymentStack;
    let db: DataSource;
    let eventId: string;
    const receivers: OutboundWebhookReceiver[] = [];

    beforeAll(async () => {
      stack = await PaymentStack.start({
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
        NOTIFY_POLL_MS: '100',
        NOTIFY_RETRY_BASE_MS: '100',
        NOTIFY_MAX_ATTEMPTS: '4',
      });
      db = stack.api.app.get(DataSource);
      eventId = await createEvent(stack.api, [
        { name: 'Floor', rows: 4, seatsPerRow: 10, priceCents: 4200 },
      ]);
    });

    afterEach(async () => {
      await Promise.all(receivers.splice(0).map((r) => r.close()));
    });

    afterAll(async () => {
      await stack?.close();
    });

    /** A fresh customer with an endpoint pointing at a fresh receiver that knows its secret. */
    async function subscribed(events?: string[]) {
      const customer = await registerCustomer(stack.api);
      const receiver = await OutboundWebhookReceiver.start();
      receivers.push(receiver);
      const created = await stack.api.post(
        '/webhook-endpoints',
        { url: receiver.url, ...(events ? { events } : {}) },
        { token: customer.token },
      );
      expect(created.status).toBe(201);
      receiver.secret = created.body.secret;
      return { customer, receiver, endpoint: created.body };
    }

    async function deliveriesOf(customer: Customer, endpointId: string): Promise<Delivery[]> {
      const response = await stack.api.get(`/webhook-endpoints/${endpointId}/deliveries`, {
        token: customer.token,
      });
      expect(response.status).toBe(200);
      return response.body;
    }

    it('POST → 201 with a secret shown once; GET lists and shows it without the secret', async () => {
      const { customer, endpoint, receiver } = await subscribed();
      expect(endpoint).toEqual({
        id: expect.any(String),
        url: receiver.url,
        events: ['*'],
        status: 'active',
        disabledReason: null,
        secret: expect.stringMatching(/^whsec_[A-Za-z0-9_-]{43}$/),
        createdAt: expect.any(String),
      });
      const one = await stack.api.get(`/webhook-endpoints/${endpoint.id}`, {
        token: customer.token,
      });
      expect(one.status).toBe(200);
      expect(one.body).not.toHaveProperty('secret');
      expect(one.body).toMatchObject({ id: endpoint.id, url: receiver.url, events: ['*'] });
      const second = await stack.api.post(
        '/webhook-endpoints',
        { url: `${receiver.url}/2`, events: ['booking.held', 'payment.refunded', 'booking.held'] },
        { token: customer.token },
      );
      expect(second.body.events).toEqual(['booking.held', 'payment.refunded']);
      const list = await stack.api.get('/webhook-endpoints?limit=1', { token: customer.token });
      expect(list.status).toBe(200);
      expect(list.headers['x-total-count']).toBe('2');
      expect(list.headers.link).toContain('rel="next"');
      expect(list.body.map((e: { id: string }) => e.id)).toEqual([second.body.id]);
      expect(list.body[0]).not.toHaveProperty('secret');
    });

    it('hold → pay → confirm → cancel: exactly one signed delivery per transition, body {id, type, createdAt, data}, Idempotency-Key = message id', async () => {
      const { customer, receiver, endpoint } = await subscribed();
      const bookingId = await stack.hold(customer, eventId, ['A1', 'A2']);
      expect((await stack.pay(customer, bookingId)).status).toBe(201);
      const cancelled = await stack.api.delete(`/bookings/${bookingId}`, { token: customer.token });
      expect(cancelled.body.status).toBe('cancelled');

      await receiver.waitFor('four webhooks', (requests) => requests.length >= 4);
      // Exactly one per transition, even after waiting for stragglers.
      await pause(700);
      const requests = receiver.requests;
      expect(requests.map((r) => r.event.type).sort()).toEqual([
        'booking.cancelled',
        'booking.confirmed',
        'booking.held',
        'payment.refunded',
      ]);
      const messages = await db.query<
        { id: string; topic: string; payload: unknown; created_at: Date }[]
      >(`SELECT id, topic, payload, created_at FROM outbox_messages WHERE customer_id = $1`, [
        customer.id,
      ]);
      expect(messages).toHaveLength(4);
      for (const request of requests) {
        const message = messages.find((m) => m.id === request.event.id);
        expect(message).toBeDefined();
        expect(request.signatureProblem).toBeNull();
        expect(request.idempotencyKey).toBe(message!.id);
        expect(request.headers['content-type']).toBe('application/json');
        expect(request.event).toEqual({
          id: message!.id,
          type: message!.topic,
          createdAt: message!.created_at.toISOString(),
          data: message!.payload,
        });
      }
      const held = requests.find((r) => r.event.type === 'booking.held')!;
      expect(held.event.data.booking).toMatchObject({ id: bookingId, seats: ['A1', 'A2'] });
      // A wrong secret would not verify: the check is real.
      expect(
        webhookSignatureProblem(
          'whsec_wrong',
          JSON.stringify(held.event),
          String(held.headers['seatlock-signature']),
        ),
      ).toMatch(/does not match/);

      const deliveries = await deliveriesOf(customer, endpoint.id);
      expect(deliveries).toHaveLength(4);
      expect(deliveries.every((d) => d.status === 'delivered' && d.attemptCount === 1)).toBe(true);
      const metrics = await stack.api.get('/metrics');
      expect(metrics.body).toMatch(
        /seatlock_notification_deliveries\{channel="webhook",status="delivered"\} [1-9]/,
      );
    });

    it('a receiver answering 500 three times then 200: delivered on the 4th attempt; the deliveries log shows all four', async () => {
      const { customer, receiver, endpoint } = await subscribed(['booking.held']);
      receiver.respond = (_event, index) => (index < 3 ? 500 : 200);
      const bookingId = await stack.hold(customer, eventId, ['B1']);

      await receiver.waitFor('the fourth attempt', (requests) => requests.length >= 4);
      const [delivery] = await eventually('the delivery recorded as delivered', async () => {
        const found = await deliveriesOf(customer, endpoint.id);
        return found[0]?.status === 'delivered' && found;
      });
      await pause(500);

      expect(receiver.requests).toHaveLength(4);
      expect(new Set(receiver.requests.map((r) => r.idempotencyKey)).size).toBe(1);
      expect(receiver.requests.every((r) => r.signatureProblem === null)).toBe(true);
      expect(receiver.requests[0].event.data.booking.id).toBe(bookingId);
      expect(delivery).toMatchObject({
        eventType: 'booking.held',
        status: 'delivered',
        attemptCount: 4,
        messageId: receiver.requests[0].idempotencyKey,
      });
      expect(delivery.attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
        [1, 500],
        [2, 500],
        [3, 500],
        [4, 200],
      ]);
      expect(delivery.attempts.slice(0, 3).every((a) => /answered 500/.test(a.error ?? ''))).toBe(
        true,
      );
      expect(delivery.attempts[3].error).toBeNull();
      for (const attempt of delivery.attempts) {
        expect(attempt.latencyMs).toBeGreaterThanOrEqual(0);
        expect(Date.parse(attempt.at)).toBeGreaterThan(0);
      }
      // Backoff between attempts (base 100 ms, equal jitter: at least 50, 100, 200 ms).
      const times = receiver.requests.map((r) => r.receivedAt);
      expect(times[3] - times[0]).toBeGreaterThanOrEqual(300);
    });

    it('a receiver that never answers 2xx: dead after NOTIFY_MAX_ATTEMPTS, listed in /admin/outbox?status=dead; admin retry delivers once it answers 200', async () => {
      const { customer, receiver, endpoint } = await subscribed(['booking.held']);
      receiver.respond = () => 503;
      await stack.hold(customer, eventId, ['C1']);

      const [dead] = await eventually('the delivery dead', async () => {
        const found = await deliveriesOf(customer, endpoint.id);
        return found[0]?.status === 'dead' && found;
      });
      expect(dead.attemptCount).toBe(4);
      expect(receiver.requests).toHaveLength(4);
      const listed = await stack.api.get('/admin/outbox?status=dead&limit=100', admin);
      expect(listed.status).toBe(200);
      const message = listed.body.find((m: { id: string }) => m.id === dead.messageId);
      expect(message).toMatchObject({
        status: 'dead',
        topic: 'booking.held',
        lastError: expect.stringMatching(/webhook delivery .* dead after 4 attempts: .*503/),
      });
      const metrics = await stack.api.get('/metrics');
      expect(metrics.body).toMatch(
        /seatlock_notification_deliveries\{channel="webhook",status="dead"\} [1-9]/,
      );
      expect(metrics.body).toMatch(
        /seatlock_delivery_attempts_total\{channel="webhook",outcome="dead"\} [1-9]/,
      );

      receiver.respond = () => 200;
      const retried = await stack.api.post(
        `/admin/outbox/${dead.messageId}/retry`,
        undefined,
        admin,
      );
      expect(retried.status).toBe(200);
      // Its fan-out had happened: it goes back to sent, and its dead delivery to pending.
      expect(retried.body).toMatchObject({ id: dead.messageId, status: 'sent', lastError: null });
      const [delivered] = await eventually('the delivery delivered after the retry', async () => {
        const found = await deliveriesOf(customer, endpoint.id);
        return found[0]?.status === 'delivered' && found;
      });
      await pause(300);
      expect(receiver.requests).toHaveLength(5);
      expect(receiver.requests[4]).toMatchObject({
        answered: 200,
        idempotencyKey: dead.messageId,
        signatureProblem: null,
      });
      expect(delivered.attemptCount).toBe(1);
      expect(delivered.attempts.map((a) => a.statusCode)).toEqual([503, 503, 503, 503, 200]);
      // One in-app notification all along: the retry did not fan the message out again.
      const [{ count }] = await db.query(
        `SELECT count(*)::int AS count FROM notifications WHERE message_id = $1`,
        [dead.messageId],
      );
      expect(count).toBe(1);
      const again = await stack.api.post(`/admin/outbox/${dead.messageId}/retry`, undefined, admin);
      expect(again.status).toBe(409);
    });

    it('410 Gone disables the endpoint and cancels its pending deliveries; nothing more is sent to it', async () => {
      const { customer, receiver, endpoint } = await subscribed(['booking.held']);
      receiver.respond = () => 410;
      await stack.hold(customer, eventId, ['D1']);

      const disabled = await eventually('the endpoint disabled', async () => {
        const found = await stack.api.get(`/webhook-endpoints/${endpoint.id}`, {
          token: customer.token,
        });
        return found.body.status === 'disabled' && found.body;
      });
      expect(disabled.disabledReason).toMatch(/410/);
      await stack.hold(customer, eventId, ['D2']);
      await pause(700);
      expect(receiver.requests).toHaveLength(1);
      const deliveries = await deliveriesOf(customer, endpoint.id);
      expect(deliveries).toHaveLength(1);
      expect(deliveries[0]).toMatchObject({ status: 'cancelled', attemptCount: 1 });
      expect(deliveries[0].attempts[0].statusCode).toBe(410);
    });

    it('DELETE answers 200 with the endpoint deleted, cancels its pending deliveries, and the endpoint is 404 afterwards', async () => {
      const { customer, receiver, endpoint } = await subscribed(['booking.held']);
      receiver.respond = () => 500;
      await stack.hold(customer, eventId, ['D3']);
      await receiver.waitFor('a first failed attempt', (requests) => requests.length >= 1);

      const deleted = await stack.api.delete(`/webhook-endpoints/${endpoint.id}`, {
        token: customer.token,
      });
      expect(deleted.status).toBe(200);
      expect(deleted.body).toMatchObject({ id: endpoint.id, status: 'deleted' });
      const seen = receiver.requests.length;
      await pause(1000);
      // At most one attempt was already in flight when it was deleted.
      expect(receiver.requests.length).toBeLessThanOrEqual(seen + 1);
      const [row] = await db.query(
        `SELECT status FROM notification_deliveries WHERE endpoint_id = $1`,
        [endpoint.id],
      );
      expect(row.status).toBe('cancelled');
      for (const path of [
        `/webhook-endpoints/${endpoint.id}`,
        `/webhook-endpoints/${endpoint.id}/deliveries`,
      ]) {
        const gone = await stack.api.get(path, { token: customer.token });
        expect(gone.status).toBe(404);
        expect(gone.body.code).toBe('WEBHOOK_ENDPOINT.NOT_FOUND');
      }
      const twice = await stack.api.delete(`/webhook-endpoints/${endpoint.id}`, {
        token: customer.token,
      });
      expect(twice.status).toBe(404);
    });

    describe('bad input', () => {
      it('a URL that is not http(s) or does not parse is 422 naming url; unknown events are 422 naming them', async () => {
        const customer = await registerCustomer(stack.api);
        const auth = { token: customer.token };
        for (const url of ['ftp://example.com/hook', 'javascript:alert(1)', 'not a url']) {
          const response = await stack.api.post('/webhook-endpoints', { url }, auth);
          expect(response.status).toBe(422);
          expect(response.headers['content-type']).toContain('application/problem+json');
          expect(response.body.code).toBe('WEBHOOK_ENDPOINT.INVALID_URL');
          expect(fields(response.body)).toEqual(['url']);
        }
        const events = await stack.api.post(
          '/webhook-endpoints',
          { url: 'https://example.com/hook', events: ['booking.held', 'booking.exploded', 'x'] },
          auth,
        );
        expect(events.status).toBe(422);
        expect(events.body).toMatchObject({
          code: 'WEBHOOK_ENDPOINT.UNKNOWN_EVENTS',
          unknownEvents: ['booking.exploded', 'x'],
        });
        expect(fields(events.body)).toEqual(['events']);
        const star = await stack.api.post(
          '/webhook-endpoints',
          { url: 'https://example.com/hook', events: ['*', 'booking.held'] },
          auth,
        );
        expect(star.status).toBe(422);
        expect(fields(star.body)).toEqual(['events']);
      });

      it('schema breaks are 400 naming every field: missing url, long url, events not a list, unknown fields', async () => {
        const customer = await registerCustomer(stack.api);
        const auth = { token: customer.token };
        const missing = await stack.api.post('/webhook-endpoints', { events: 'all' }, auth);
        expect(missing.status).toBe(400);
        expect(fields(missing.body).sort()).toEqual(['events', 'url']);
        const long = await stack.api.post(
          '/webhook-endpoints',
          { url: `https://example.com/${'a'.repeat(2048)}` },
          auth,
        );
        expect(long.status).toBe(400);
        expect(fields(long.body)).toEqual(['url']);
        const extra = await stack.api.post(
          '/webhook-endpoints',
          { url: 'https://example.com/hook', secret: 'mine' },
          auth,
        );
        expect(extra.status).toBe(400);
      });

      it('non-UUID ids are 400; another customer’s endpoint is 404; no token is 401', async () => {
        const { endpoint } = await subscribed();
        const other = await registerCustomer(stack.api);
        const auth = { token: other.token };
        for (const response of [
          await stack.api.get('/webhook-endpoints/not-a-uuid', auth),
          await stack.api.delete('/webhook-endpoints/123', auth),
          await stack.api.get('/webhook-endpoints/123/deliveries', auth),
        ]) {
          expect(response.status).toBe(400);
          expect(fields(response.body)).toEqual(['id']);
        }
        for (const response of [
          await stack.api.get(`/webhook-endpoints/${endpoint.id}`, auth),
          await stack.api.get(`/webhook-endpoints/${endpoint.id}/deliveries`, auth),
          await stack.api.delete(`/webhook-endpoints/${endpoint.id}`, auth),
          await stack.api.get(`/webhook-endpoints/${randomUUID()}`, auth),
        ]) {
          expect(response.status).toBe(404);
          expect(response.body.code).toBe('WEBHOOK_ENDPOINT.NOT_FOUND');
        }
        expect((await stack.api.get('/webhook-endpoints', auth)).body).toEqual([]);
        for (const response of [
          await stack.api.post('/webhook-endpoints', { url: 'https://example.com/hook' }),
          await stack.api.get('/webhook-endpoints'),
          await stack.api.get(`/webhook-endpoints/${endpoint.id}`),
          await stack.api.delete(`/webhook-endpoints/${endpoint.id}`),
          await stack.api.get(`/webhook-endpoints/${endpoint.id}/deliveries`),
        ]) {
          expect(response.status).toBe(401);
        }
      });

      it('at most 20 endpoints per customer: the 21st is 422; deleting one makes room', async () => {
        const customer = await registerCustomer(stack.api);
        const auth = { token: customer.token };
        const created = await Promise.all(
          Array.from({ length: 22 }, (_, i) =>
            stack.api.post('/webhook-endpoints', { url: `https://example.com/hook/${i}` }, auth),
          ),
        );
        const statuses = created.map((r) => r.status).sort();
        expect(statuses.filter((s) => s === 201)).toHaveLength(20);
        const refused = created.filter((r) => r.status === 422);
        expect(refused).toHaveLength(2);
        expect(refused[0].body).toMatchObject({
          code: 'WEBHOOK_ENDPOINT.LIMIT_REACHED',
          limit: 20,
        });
        const first = created.find((r) => r.status === 201)!;
        await stack.api.delete(`/webhook-endpoints/${first.body.id}`, auth);
        const room = await stack.api.post(
          '/webhook-endpoints',
          { url: 'https://example.com/hook/again' },
          auth,
        );
        expect(room.status).toBe(201);
      });
    });
  });

  describe('one API with the private-network guard on (the default)', () => {
    let api: TestApp;
    let receiver: OutboundWebhookReceiver;

    beforeAll(async () => {
      api = await TestApp.start({
        // Explicit: ConfigModule copies the first app's settings into process.env, where the next
        // app in this process would find WEBHOOK_ALLOW_PRIVATE_NETWORKS=true.
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false',
        NOTIFY_POLL_MS: '100',
        NOTIFY_RETRY_BASE_MS: '100',
        NOTIFY_MAX_ATTEMPTS: '2',
      });
      receiver = await OutboundWebhookReceiver.start();
    });

    afterAll(async () => {
      await receiver?.close();
      await api?.close();
    });

    it('a URL naming a private, loopback or link-local address is 422 naming url', async () => {
      const customer = await registerCustomer(api);
      for (const url of [
        'http://127.0.0.1:8080/hook',
        'http://10.1.2.3/hook',
        'https://192.168.0.10/hook',
        'http://169.254.169.254/latest/meta-data',
        'http://[::1]:3000/hook',
        'http://[::ffff:10.0.0.1]/hook',
        'http://localhost:3000/hook',
      ]) {
        const response = await api.post('/webhook-endpoints', { url }, { token: customer.token });
        expect(response.status).toBe(422);
        expect(response.body.code).toBe('WEBHOOK_ENDPOINT.PRIVATE_ADDRESS');
        expect(fields(response.body)).toEqual(['url']);
      }
      const fine = await api.post(
        '/webhook-endpoints',
        { url: 'https://203.0.113.7/hook' },
        { token: customer.token },
      );
      expect(fine.status).toBe(201);
    });

    it('at send time, an endpoint on a private address (stored before the guard was on) fails each attempt with a clear error and is never reached', async () => {
      const customer = await registerCustomer(api);
      const db = api.app.get(DataSource);
      const endpointId = randomUUID();
      await db.query(
        `INSERT INTO webhook_endpoints (id, customer_id, url, events, secret)
         VALUES ($1, $2, $3, '{*}', 'whsec_test')`,
        [endpointId, customer.id, receiver.url],
      );
      const eventId = await createEvent(api);
      const held = await api.post(
        '/bookings',
        { eventId, seatIds: ['A1'] },
        { token: customer.token },
      );
      expect(held.status).toBe(201);

      const [row] = await eventually('the delivery dead', async () => {
        const rows = await db.query(
          `SELECT status, last_error FROM notification_deliveries WHERE endpoint_id = $1`,
          [endpointId],
        );
        return rows[0]?.status === 'dead' && rows;
      });
      expect(row.last_error).toMatch(/refused: 127\.0\.0\.1 is a private address/);
      expect(receiver.requests).toHaveLength(0);
    });
  });

  describe('built API processes on one database and Redis', () => {
    const apps: BuiltApp[] = [];
    let db: Client;
    let receiver: OutboundWebhookReceiver;

    function start(env: Record<string, string> = {}): Promise<BuiltApp> {
      return BuiltApp.start({
        DATABASE_URL: testDatabaseUrl(),
        REDIS_URL: testRedisUrl(),
        ADMIN_TOKEN: TEST_ADMIN_TOKEN,
        LOG_LEVEL: 'warn',
        MIGRATIONS_RUN: 'false',
        RATE_LIMIT_PER_MINUTE: '0',
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
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
      return { status: response.status, body: text ? JSON.parse(text) : null };
    }

    /** A customer subscribed to booking.held at `receiver`, and an event with free seats. */
    async function subscribedCustomer(app: BuiltApp) {
      const registered = await call(app, 'POST', '/customers', {
        email: `w-${randomUUID()}@example.test`,
        name: 'Webhooked',
      });
      const endpoint = await call(
        app,
        'POST',
        '/webhook-endpoints',
        { url: receiver.url, events: ['booking.held'] },
        registered.body.token,
      );
      expect(endpoint.status).toBe(201);
      receiver.secret = endpoint.body.secret;
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
      return { customer: registered.body, endpointId: endpoint.body.id, eventId: event.body.id };
    }

    beforeAll(async () => {
      db = new Client({ connectionString: testDatabaseUrl() });
      await db.connect();
    });

    beforeEach(async () => {
      receiver = await OutboundWebhookReceiver.start();
    });

    afterEach(async () => {
      await Promise.all(apps.splice(0).map((app) => app.stop()));
      await receiver.close();
    });

    afterAll(async () => {
      await db?.end();
    });

    it('two API processes deliver 1,000 messages to one endpoint together: every message delivered, none twice', async () => {
      const [first] = await Promise.all([start(), start()]);
      const { customer, eventId } = await subscribedCustomer(first);
      const held = await call(
        first,
        'POST',
        '/bookings',
        { eventId, seatIds: ['A1'] },
        customer.token,
      );
      expect(held.status).toBe(201);
      await receiver.waitFor('the hold delivered', (requests) => requests.length === 1);

      const started = Date.now();
      await db.query('BEGIN');
      const inserted = await db.query<{ id: string }>(
        `INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
         SELECT gen_random_uuid(), 'booking.held', $1, $2, $3::jsonb FROM generate_series(1, 1000)
         RETURNING id`,
        [customer.id, held.body.id, JSON.stringify({ booking: held.body })],
      );
      await db.query(`SELECT pg_notify('outbox', '')`);
      await db.query('COMMIT');
      const ids = new Set(inserted.rows.map((row) => row.id));

      await receiver.waitFor('1,000 deliveries', (requests) => requests.length >= 1001, 60_000);
      const elapsedMs = Date.now() - started;
      await eventually('all 1,000 deliveries recorded', async () => {
        const { rows } = await db.query(
          `SELECT count(*)::int AS delivered FROM notification_deliveries
           WHERE message_id = ANY($1) AND status = 'delivered'`,
          [[...ids]],
        );
        return rows[0].delivered === 1000;
      });
      await pause(500);

      const batch = receiver.requests.filter((r) => ids.has(r.idempotencyKey ?? ''));
      const distinct = new Set(batch.map((r) => r.idempotencyKey)).size;
      expect(distinct).toBe(1000);
      expect(batch.length - distinct).toBe(0);
      expect(receiver.requests).toHaveLength(1001);
      expect(batch.every((r) => r.signatureProblem === null && r.answered === 200)).toBe(true);
      const { rows: attempts } = await db.query(
        `SELECT count(*)::int AS attempts FROM delivery_attempts a
         JOIN notification_deliveries d ON d.id = a.delivery_id WHERE d.message_id = ANY($1)`,
        [[...ids]],
      );
      expect(attempts[0].attempts).toBe(1000);
      console.log(
        `1,000 webhook deliveries, 2 API processes, one endpoint: all delivered in ${elapsedMs} ms ` +
          `(commit to last request); duplicates ${batch.length - distinct}`,
      );
    }, 90_000);

    it('the API SIGKILLed mid-send (after the commit, before any answer): the message is delivered after a restart', async () => {
      const env = {
        NOTIFY_POLL_MS: '200',
        NOTIFY_LEASE_MS: '2000',
        NOTIFY_SEND_TIMEOUT_MS: '3000',
      };
      const doomed = await start(env);
      const { customer, eventId, endpointId } = await subscribedCustomer(doomed);
      // The first request never gets an answer: the process dies while it waits.
      receiver.respond = (_event, index) => (index === 0 ? 'hang' : 200);
      const held = await call(
        doomed,
        'POST',
        '/bookings',
        { eventId, seatIds: ['A1'] },
        customer.token,
      );
      expect(held.status).toBe(201);
      await receiver.waitFor('the send in flight', (requests) => requests.length === 1);

      await doomed.kill();

      const { rows: before } = await db.query(
        `SELECT status, attempts, claimed_by IS NOT NULL AS claimed FROM notification_deliveries
         WHERE endpoint_id = $1`,
        [endpointId],
      );
      expect(before).toEqual([{ status: 'pending', attempts: 0, claimed: true }]);

      await start(env);
      await receiver.waitFor('the delivery after the restart', (requests) => requests.length === 2);
      const [row] = await eventually('the delivery recorded', async () => {
        const { rows } = await db.query(
          `SELECT status, attempts FROM notification_deliveries WHERE endpoint_id = $1`,
          [endpointId],
        );
        return rows[0]?.status === 'delivered' && rows;
      });
      expect(row).toEqual({ status: 'delivered', attempts: 1 });
      // At least once: the receiver saw it twice, with the same key to drop the second.
      const [lost, delivered] = receiver.requests;
      expect(delivered.idempotencyKey).toBe(lost.idempotencyKey);
      expect(delivered.event.data.booking.id).toBe(held.body.id);
      expect(delivered).toMatchObject({ answered: 200, signatureProblem: null });
    }, 60_000);
  });
});

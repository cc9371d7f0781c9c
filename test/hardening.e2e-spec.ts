import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { TypeOrmHealthIndicator } from '@nestjs/terminus';
import { DataSource } from 'typeorm';
import { Agent, request } from 'undici';
import { IdempotencyRepository } from '../apps/api/src/common/idempotency/idempotency.repository';
import { HealthController } from '../apps/api/src/health/health.controller';
import { RedisHealthIndicator } from '../apps/api/src/health/redis-health.indicator';
import { isPrivateAddress } from '../apps/api/src/modules/notification/webhook/private-address';
import { createEvent, registerCustomer } from './support/fixtures';
import { eventually } from './support/payment-stack';
import { expectProblem } from './support/problem-assertions';
import { freePort, RedisServer } from './support/redis-server';
import { SseClient } from './support/sse-client';
import { type ApiResponse, TestApp } from './support/test-app';

/**
 * Issue 21, hardening for the open internet, against the real API (real PostgreSQL and Redis):
 * security headers on every answer, a cheap /health/ready that tells no internals, METRICS_TOKEN,
 * STREAM_MAX_PER_IP, webhook refusals that name no internal address, and an idempotency purge
 * that clears any backlog in one run.
 */

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function expectEveryAnswerHeaders(what: string, headers: Record<string, string>): void {
  expect({ what, nosniff: headers['x-content-type-options'] }).toEqual({
    what,
    nosniff: 'nosniff',
  });
  expect({ what, referrer: headers['referrer-policy'] }).toEqual({
    what,
    referrer: 'no-referrer',
  });
}

/** The policy's directives, by name. */
function directives(policy: string | undefined): Map<string, string> {
  return new Map(
    (policy ?? '')
      .split(';')
      .map((part) => part.trim().split(/\s+/))
      .filter((words) => words[0])
      .map(([name, ...values]) => [name, values.join(' ')]),
  );
}

/** Opens a seat stream from `localAddress` (any 127.x.y.z is this machine's loopback). */
async function openStreamFrom(
  url: string,
  localAddress: string,
): Promise<{ status: number; headers: Record<string, string>; body: string; close(): void }> {
  const agent = new Agent({ localAddress });
  const abort = new AbortController();
  const response = await request(url, {
    headers: { accept: 'text/event-stream' },
    dispatcher: agent,
    signal: abort.signal,
    bodyTimeout: 0,
  });
  const headers = Object.fromEntries(
    Object.entries(response.headers).map(([k, v]) => [k, String(v)]),
  );
  const body = response.statusCode === 200 ? '' : await response.body.text();
  if (response.statusCode === 200) response.body.on('error', () => undefined);
  return {
    status: response.statusCode,
    headers,
    body,
    close: () => {
      abort.abort();
      void agent.destroy().catch(() => undefined);
    },
  };
}

describe('hardening for the open internet (issue 21)', () => {
  describe('security headers', () => {
    let api: TestApp;
    const streams: SseClient[] = [];

    beforeAll(async () => {
      api = await TestApp.start();
    });

    afterAll(async () => {
      await Promise.all(streams.map((stream) => stream.close()));
      await api?.close();
    });

    it('every answer carries X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer', async () => {
      const eventId = await createEvent(api);
      const answers: [string, ApiResponse, number][] = [
        ['API JSON', await api.get('/events?limit=1'), 200],
        ['created JSON', await api.post('/customers', { email: 'x', name: 'y' }), 400],
        ['problem+json 404', await api.get(`/events/${randomUUID()}`), 404],
        ['unknown route 404', await api.get('/no/such/route'), 404],
        [
          'unparsable body',
          await api.post('/customers', undefined, {
            raw: '{',
            headers: { 'content-type': 'application/json' },
          }),
          400,
        ],
        [
          'unsupported type',
          await api.post('/customers', undefined, {
            raw: 'a=b',
            headers: { 'content-type': 'text/plain' },
          }),
          415,
        ],
        ['401', await api.get('/bookings'), 401],
        ['seats', await api.get(`/events/${eventId}/seats`), 200],
        ['health', await api.get('/health/live'), 200],
        ['metrics', await api.get('/metrics'), 200],
        ['/docs-json', await api.get('/docs-json'), 200],
        ['/docs', await api.get('/docs'), 200],
        ['/docs/swagger-ui-init.js', await api.get('/docs/swagger-ui-init.js'), 200],
        ['/docs/swagger-ui.css', await api.get('/docs/swagger-ui.css'), 200],
        ['/docs/swagger-ui-bundle.js', await api.get('/docs/swagger-ui-bundle.js'), 200],
        ['/', await api.get('/'), 200],
        ['/assets/seat-map.js', await api.get('/assets/seat-map.js'), 200],
        ['/assets/seat-map.css', await api.get('/assets/seat-map.css'), 200],
      ];
      for (const [what, response, status] of answers) {
        expect({ what, status: response.status }).toEqual({ what, status });
        expectEveryAnswerHeaders(what, response.headers);
      }
    });

    it('the seat stream (which takes the socket over) carries them too', async () => {
      const eventId = await createEvent(api);
      const stream = await SseClient.open(`${api.url}/events/${eventId}/seats/stream`);
      streams.push(stream);
      expect(stream.status).toBe(200);
      expect(stream.headers['content-type']).toContain('text/event-stream');
      expectEveryAnswerHeaders('stream', stream.headers);
      await stream.nth('snapshot', 1);
    });

    it("HTML answers (the page, Swagger UI) carry a Content-Security-Policy with frame-ancestors 'none'", async () => {
      for (const path of ['/', '/docs', '/docs/']) {
        const page = await api.get(path);
        expect({ path, status: page.status }).toEqual({ path, status: 200 });
        expect(page.headers['content-type']).toContain('text/html');
        const policy = directives(page.headers['content-security-policy']);
        expect({ path, frameAncestors: policy.get('frame-ancestors') }).toEqual({
          path,
          frameAncestors: "'none'",
        });
        // Nothing from anywhere else: every source is this origin (or nothing), no script inline.
        expect(["'none'", "'self'"]).toContain(policy.get('default-src'));
        expect(policy.get('script-src')).toBe("'self'");
        expect(policy.get('base-uri')).toBe("'none'");
        for (const [name, sources] of policy) {
          expect({ name, sources }).toEqual({
            name,
            sources: expect.not.stringMatching(/\*|https?:|unsafe-eval/),
          });
        }
      }
      // The page has no inline style either; Swagger UI needs it (its components set style=).
      expect(
        directives((await api.get('/')).headers['content-security-policy']).get('style-src'),
      ).toBe("'self'");
    });

    it('a 503 the request gate answers from its hook and a 429 of the rate limit carry them', async () => {
      const door = await TestApp.start({ MAX_REQUESTS_IN_FLIGHT: '1', MAX_REQUESTS_QUEUED: '0' });
      const limited = await TestApp.start({ RATE_LIMIT_PER_MINUTE: '1' });
      try {
        // One request past the door at a time and none waiting: a crowd is mostly shed.
        const eventId = await createEvent(door);
        const shed = await eventually('a request shed at the door', async () => {
          const crowd = await Promise.all(
            Array.from({ length: 40 }, () => door.get(`/events/${eventId}/seats`)),
          );
          return crowd.find((answer) => answer.status === 503);
        });
        expectProblem(shed, 503, 'SERVICE.OVERLOADED');
        expectEveryAnswerHeaders('503 at the door', shed.headers);

        const answers = [await limited.get('/events'), await limited.get('/events')];
        const refused = answers.find((answer) => answer.status === 429);
        expect(refused).toBeDefined();
        expectEveryAnswerHeaders('429', refused!.headers);
      } finally {
        await door.close();
        await limited.close();
      }
    });
  });

  describe('GET /health/ready', () => {
    it('concurrent probes share one check; a stream of probes costs about one check a second', async () => {
      const api = await TestApp.start();
      try {
        const controller = api.app.get(HealthController);
        const redisChecks = jest.spyOn(api.app.get(RedisHealthIndicator), 'check');
        const database = (controller as unknown as { database: TypeOrmHealthIndicator }).database;
        const databaseChecks = jest.spyOn(database, 'pingCheck');
        // Past the age of any answer the start may have left behind.
        await pause(1100);

        const crowdStarted = performance.now();
        const crowd = await Promise.all(
          Array.from({ length: 200 }, () => api.get('/health/ready')),
        );
        const crowdMs = performance.now() - crowdStarted;
        expect(crowd.map((answer) => answer.status)).toEqual(crowd.map(() => 200));
        expect(crowd.every((answer) => answer.body.status === 'ok')).toBe(true);
        // One check, or one more per second the crowd took to arrive on a loaded machine.
        const allowed = 1 + Math.floor(crowdMs / 1000);
        expect(redisChecks.mock.calls.length).toBeGreaterThanOrEqual(1);
        expect(redisChecks.mock.calls.length).toBeLessThanOrEqual(allowed);
        expect(databaseChecks.mock.calls.length).toBe(redisChecks.mock.calls.length);
        const crowdChecks = redisChecks.mock.calls.length;

        // 2.5 s of probes, one after another: about one check a second, never one a probe.
        const started = performance.now();
        let probes = 0;
        while (performance.now() - started < 2500) {
          expect((await api.get('/health/ready')).status).toBe(200);
          probes += 1;
        }
        expect(probes).toBeGreaterThan(20);
        const checks = redisChecks.mock.calls.length - crowdChecks;
        expect(checks).toBeGreaterThanOrEqual(2);
        expect(checks).toBeLessThanOrEqual(4);
        expect(databaseChecks.mock.calls.length).toBe(redisChecks.mock.calls.length);
      } finally {
        await api.close();
      }
    });

    it('a change is seen within about a second', async () => {
      const redis = await RedisServer.start();
      const api = await TestApp.start({ REDIS_URL: redis.url });
      try {
        await eventually(
          'Redis up',
          async () => (await api.get('/health/ready')).body.status === 'ok',
        );
        await redis.kill();
        const killed = performance.now();
        await eventually('Redis seen down', async () => {
          const answer = await api.get('/health/ready');
          return answer.body.details?.redis?.status === 'degraded';
        });
        expect(performance.now() - killed).toBeLessThan(1500);
      } finally {
        await api.close();
        await redis.stop();
      }
    });

    it("Redis unreachable: degraded, and the body carries none of Redis's error text", async () => {
      const port = await freePort();
      const api = await TestApp.start({ REDIS_URL: `redis://127.0.0.1:${port}` });
      try {
        const ready = await api.get('/health/ready');
        expect(ready.status).toBe(200);
        expect(ready.body.status).toBe('degraded');
        expect(ready.body.details.redis).toEqual({
          status: 'degraded',
          mode: 'redis',
          message: 'unreachable; PostgreSQL decides holds alone',
        });
        const text = JSON.stringify(ready.body);
        expect(text).not.toContain(String(port));
        expect(text).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|connect|circuit/i);
      } finally {
        await api.close();
      }
    });
  });

  describe('METRICS_TOKEN', () => {
    const token = `metrics-${randomUUID()}`;
    let api: TestApp;

    beforeAll(async () => {
      api = await TestApp.start({ METRICS_TOKEN: token });
    });

    afterAll(async () => {
      await api?.close();
    });

    it('set: GET /metrics without the token, or with another, is 401 problem+json', async () => {
      const missing = await api.get('/metrics');
      expectProblem(missing, 401, 'AUTH.UNAUTHORIZED');
      expect(missing.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.stringify(missing.body)).not.toContain('seatlock_');
      for (const authorization of [
        `Bearer ${token}x`,
        `Bearer ${token.slice(1)}`,
        token,
        'Bearer ',
      ]) {
        const wrong = await api.get('/metrics', { headers: { authorization } });
        expectProblem(wrong, 401, 'AUTH.UNAUTHORIZED');
      }
    });

    it('set: with Authorization: Bearer <METRICS_TOKEN> it answers the metrics', async () => {
      const scraped = await api.get('/metrics', { headers: { authorization: `Bearer ${token}` } });
      expect(scraped.status).toBe(200);
      expect(scraped.headers['content-type']).toContain('text/plain');
      expect(scraped.body).toContain('seatlock_stream_subscribers');
    });

    it('unset: open as before', async () => {
      const open = await TestApp.start();
      try {
        const scraped = await open.get('/metrics');
        expect(scraped.status).toBe(200);
        expect(scraped.body).toContain('seatlock_stream_subscribers');
      } finally {
        await open.close();
      }
    });
  });

  describe('STREAM_MAX_PER_IP', () => {
    it('past it 429 problem+json with Retry-After, counted per client address; a closed stream frees its slot', async () => {
      const api = await TestApp.start({ STREAM_MAX_PER_IP: '3' });
      const opened: { close(): void }[] = [];
      try {
        const eventId = await createEvent(api);
        const url = `${api.url}/events/${eventId}/seats/stream`;
        // Ten at once from one address: exactly three get through, however they interleave.
        const burst = await Promise.all(
          Array.from({ length: 10 }, () => openStreamFrom(url, '127.0.0.1')),
        );
        opened.push(...burst);
        const statuses = burst.map((stream) => stream.status).sort();
        expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
        const refused = burst.find((stream) => stream.status === 429)!;
        expect(refused.headers['content-type']).toContain('application/problem+json');
        expect(refused.headers['retry-after']).toBe('5');
        expect(JSON.parse(refused.body)).toMatchObject({
          status: 429,
          code: 'STREAM.TOO_MANY_FOR_CLIENT',
        });
        expectEveryAnswerHeaders('stream 429', refused.headers);

        // Another address is not counted with it.
        const other = await openStreamFrom(url, '127.0.0.2');
        opened.push(other);
        expect(other.status).toBe(200);

        // One of the three closes: its slot is free again (once the server saw the close).
        burst.find((stream) => stream.status === 200)!.close();
        const again = await eventually('a freed slot', async () => {
          const stream = await openStreamFrom(url, '127.0.0.1');
          opened.push(stream);
          return stream.status === 200 ? stream : null;
        });
        expect(again.status).toBe(200);
        const full = await openStreamFrom(url, '127.0.0.1');
        opened.push(full);
        expect(full.status).toBe(429);
      } finally {
        for (const stream of opened) stream.close();
        await api.close();
      }
    });

    it('0 switches it off', async () => {
      const api = await TestApp.start({ STREAM_MAX_PER_IP: '0' });
      const opened: { close(): void }[] = [];
      try {
        const eventId = await createEvent(api);
        const url = `${api.url}/events/${eventId}/seats/stream`;
        const burst = await Promise.all(
          Array.from({ length: 60 }, () => openStreamFrom(url, '127.0.0.1')),
        );
        opened.push(...burst);
        expect(burst.filter((stream) => stream.status !== 200)).toEqual([]);
      } finally {
        for (const stream of opened) stream.close();
        await api.close();
      }
    });
  });

  describe('webhook refusals', () => {
    it('a host name resolving to a private address: the stored and shown error says so without naming the address', async () => {
      // This machine's own name resolves to one of its addresses (loopback, or a private one in a
      // container): just what a customer would point a DNS name at to probe our network.
      const host = hostname();
      const resolved = await lookup(host, { all: true });
      expect(resolved.some(({ address }) => isPrivateAddress(address))).toBe(true);

      const api = await TestApp.start({
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false',
        NOTIFY_POLL_MS: '100',
        NOTIFY_RETRY_BASE_MS: '100',
        NOTIFY_MAX_ATTEMPTS: '2',
      });
      try {
        const customer = await registerCustomer(api);
        const created = await api.post(
          '/webhook-endpoints',
          { url: `http://${host}:9/hook` },
          { token: customer.token },
        );
        expect(created.status).toBe(201);
        const eventId = await createEvent(api);
        const held = await api.post(
          '/bookings',
          { eventId, seatIds: ['A1'] },
          { token: customer.token },
        );
        expect(held.status).toBe(201);

        const deliveries = await eventually('the delivery dead', async () => {
          const answer = await api.get(`/webhook-endpoints/${created.body.id}/deliveries`, {
            token: customer.token,
          });
          return answer.body[0]?.status === 'dead' && answer.body;
        });
        const errors: string[] = deliveries[0].attempts.map((a: { error: string }) => a.error);
        expect(errors.length).toBeGreaterThan(0);
        const [row] = await api.app
          .get(DataSource)
          .query(`SELECT last_error FROM notification_deliveries WHERE endpoint_id = $1`, [
            created.body.id,
          ]);
        for (const error of [...errors, row.last_error as string]) {
          expect(error).toContain(`refused: ${host} resolves to a private address`);
          for (const { address } of resolved) expect(error).not.toContain(address);
        }
      } finally {
        await api.close();
      }
    });
  });

  describe('the idempotency purge', () => {
    it('one run removes every expired key (more than 1,000), in statements of at most 1,000 rows', async () => {
      const api = await TestApp.start({ RECONCILE_INTERVAL_MS: '3600000' });
      try {
        const db = api.app.get(DataSource);
        const customer = await registerCustomer(api);
        const seed = (count: number, expiresAt: string, prefix: string) =>
          db.query(
            `INSERT INTO idempotency_keys
               (customer_id, key, fingerprint, state, response_status, response_body, locked_until, expires_at)
             SELECT $1, $2 || n, repeat('0', 64), 'completed', 201, '{}', now(), ${expiresAt}
             FROM generate_series(1, $3) AS n`,
            [customer.id, prefix, count],
          );
        await seed(2500, `now() - interval '1 hour'`, 'old-');
        await seed(10, `now() + interval '1 day'`, 'fresh-');

        // Each DELETE the run sends, with the rows it removed.
        const spy = jest.spyOn(db, 'query');
        let purged: number;
        let statements: number[];
        try {
          purged = await api.app.get(IdempotencyRepository).purgeExpired();
          const deletes = spy.mock.calls.flatMap(([sql], i) =>
            /DELETE FROM idempotency_keys/.test(sql)
              ? [spy.mock.results[i].value as Promise<[unknown, number]>]
              : [],
          );
          statements = (await Promise.all(deletes)).map(([, count]) => count);
        } finally {
          spy.mockRestore();
        }
        expect(purged).toBeGreaterThanOrEqual(2500);
        expect(statements.length).toBeGreaterThanOrEqual(3);
        expect(statements.every((count) => count <= 1000)).toBe(true);

        const [left] = await db.query(
          `SELECT count(*) FILTER (WHERE expires_at <= now())::int AS expired,
                  count(*) FILTER (WHERE key LIKE 'fresh-%')::int AS fresh
           FROM idempotency_keys WHERE customer_id = $1`,
          [customer.id],
        );
        expect(left).toEqual({ expired: 0, fresh: 10 });
      } finally {
        await api.close();
      }
    });
  });
});

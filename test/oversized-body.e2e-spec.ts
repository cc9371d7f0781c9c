import http from 'node:http';
import { request } from 'undici';
import { DataSource } from 'typeorm';
import { BuiltApp } from './support/built-app';
import { createEvent, type Customer, registerCustomer } from './support/fixtures';
import { TestApp } from './support/test-app';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './support/test-env';

/**
 * A body over the 256 KB limit is answered 413 REQUEST.TOO_LARGE, and the client reads that answer
 * even though it is still sending: the server reads and drops the rest before it answers (a
 * connection closed under a sending client shows it EPIPE or a reset, not the 413). Nothing held.
 * The clients talk to the built API in its own process, as `npm start` runs it: in the test's own
 * process the client finishes writing before the server reads, and the race never shows.
 */

const TEN_MB = 10 * 1024 * 1024;

interface Answer {
  status?: number;
  body?: any;
  error?: string;
}

function bookingBody(eventId: string): Buffer {
  // Valid JSON to the end: a real hold request padded with a 10 MB field.
  const padding = 'x'.repeat(TEN_MB);
  return Buffer.from(JSON.stringify({ eventId, seatIds: ['A1'], padding }));
}

function viaNodeHttp(url: string, token: string, body: Buffer, chunked: boolean): Promise<Answer> {
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      authorization: `Bearer ${token}`,
    };
    if (!chunked) headers['content-length'] = body.length;
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
    });
    req.on('error', (error) => resolve({ error: error.message }));
    if (chunked) {
      // In 64 KB writes, as a streaming client would send it.
      for (let at = 0; at < body.length; at += 65_536) req.write(body.subarray(at, at + 65_536));
      req.end();
    } else {
      req.end(body);
    }
  });
}

async function viaUndici(url: string, token: string, body: Buffer): Promise<Answer> {
  try {
    const response = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body,
    });
    return { status: response.statusCode, body: JSON.parse(await response.body.text()) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

describe('an oversized body (10 MB) while the client is still sending it', () => {
  let api: TestApp;
  let built: BuiltApp;
  let db: DataSource;
  let customer: Customer;
  let eventId: string;

  beforeAll(async () => {
    [api, built] = await Promise.all([
      TestApp.start(),
      BuiltApp.start({
        DATABASE_URL: testDatabaseUrl(),
        REDIS_URL: testRedisUrl(),
        ADMIN_TOKEN: TEST_ADMIN_TOKEN,
        LOG_LEVEL: 'warn',
        MIGRATIONS_RUN: 'false',
        RATE_LIMIT_PER_MINUTE: '0',
      }),
    ]);
    db = api.app.get(DataSource);
    customer = await registerCustomer(api);
    eventId = await createEvent(api);
  });

  afterAll(async () => {
    await Promise.all([api?.close(), built?.stop()]);
  });

  const clients: [string, (body: Buffer) => Promise<Answer>][] = [
    ['undici', (body) => viaUndici(`${built.url}/bookings`, customer.token, body)],
    [
      'node:http with Content-Length',
      (body) => viaNodeHttp(`${built.url}/bookings`, customer.token, body, false),
    ],
    [
      'node:http chunked (no length known up front)',
      (body) => viaNodeHttp(`${built.url}/bookings`, customer.token, body, true),
    ],
  ];

  it.each(clients)('%s reads 413 REQUEST.TOO_LARGE, and nothing is held', async (_, send) => {
    const answer = await send(bookingBody(eventId));
    expect(answer.error).toBeUndefined();
    expect(answer.status).toBe(413);
    expect(answer.body).toMatchObject({ status: 413, code: 'REQUEST.TOO_LARGE' });

    const [{ bookings }] = await db.query(
      `SELECT count(*)::int AS bookings FROM bookings
        WHERE event_id = $1 AND status IN ('held', 'confirmed')`,
      [eventId],
    );
    expect(bookings).toBe(0);
    const seat = await api.get(`/events/${eventId}/seats`);
    expect(seat.body.find((s: { label: string }) => s.label === 'A1').status).toBe('free');
    // The server is fine afterwards: the same hold, small, is taken.
    const small = await api.post(
      '/bookings',
      { eventId, seatIds: ['A2'] },
      { token: customer.token },
    );
    expect(small.status).toBe(201);
    await api.delete(`/bookings/${small.body.id}`, { token: customer.token });
  });
});

import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { signWebhook } from '../apps/api/src/common/http/webhook-signature';
import { AppConfigService } from '../apps/api/src/config/app-config.service';
import { type Customer, createEvent, registerCustomer } from './support/fixtures';
import type { ApiResponse, RequestOptions } from './support/test-app';
import { TestApp } from './support/test-app';
import { TEST_ADMIN_TOKEN } from './support/test-env';

/**
 * Bad input gets the right 4xx, an application/problem+json body that names what is wrong, and
 * changes nothing in the database. Whatever the input, never a 5xx.
 */

interface Case {
  name: string;
  send: () => Promise<ApiResponse>;
  status: number;
  code: string;
  /** 400 (and 422): every one of these must be named in `errors[].field`. */
  fields?: string[];
  /** 422/409 on seats: the problem member that names the labels, and the labels, in order. */
  seats?: { member: 'unknownSeats' | 'duplicateSeats' | 'conflictingSeats'; labels: string[] };
  /** Substring the `detail` must contain. */
  detail?: string;
  /** An app bug this file found (since fixed): the case states the right behaviour. */
  bug?: string;
}

/** Every answer of the whole file, for the final "never a 5xx" check. */
const answers: { test: string; request: string; status: number }[] = [];

let api: TestApp;
let db: DataSource;
let eventId: string;
let alice: Customer;
let bob: Customer;
/** Alice's held booking of A1, A2: the one Bob attacks. */
let heldBookingId: string;

const BIG_BODY_BYTES = 10 * 1024 * 1024;

const json = (raw: string | Buffer, extra: Record<string, string> = {}): RequestOptions => ({
  raw,
  headers: { 'content-type': 'application/json', ...extra },
});

const validEvent = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'Bad input night',
  startsAt: '2027-06-01T19:30:00Z',
  venue: 'Test Hall',
  currency: 'EUR',
  sections: [{ name: 'Floor', rows: 2, seatsPerRow: 5, priceCents: 5000 }],
  ...overrides,
});

const section = (overrides: Record<string, unknown>): Record<string, unknown> => ({
  name: 'Floor',
  rows: 2,
  seatsPerRow: 5,
  priceCents: 5000,
  ...overrides,
});

const asAdmin = (body: unknown) => api.post('/admin/events', body, { token: TEST_ADMIN_TOKEN });
const holdAs = (who: () => Customer, body: unknown) =>
  api.post('/bookings', body, { token: who().token });
/** `key`: a fresh Idempotency-Key unless given; null sends none. */
const payAs = (
  who: () => Customer,
  bookingId: string,
  body: unknown,
  key: string | null = randomUUID(),
) =>
  api.post(`/bookings/${bookingId}/payments`, body, {
    token: who().token,
    headers: key === null ? {} : { 'idempotency-key': key },
  });

/** Counts of every table and digests of the rows that matter; equal before and after = nothing changed. */
async function snapshot(): Promise<Record<string, string | number>> {
  const [row] = await db.query(`
    SELECT
      (SELECT count(*) FROM customers)::int        AS customers,
      (SELECT count(*) FROM events)::int           AS events,
      (SELECT count(*) FROM seats)::int            AS seats,
      (SELECT count(*) FROM bookings)::int         AS bookings,
      (SELECT count(*) FROM booking_timeline)::int AS booking_timeline,
      (SELECT count(*) FROM outbox_messages)::int  AS outbox_messages,
      (SELECT count(*) FROM payments)::int         AS payments,
      (SELECT count(*) FROM idempotency_keys)::int AS idempotency_keys,
      (SELECT count(*) FROM gateway_events)::int   AS gateway_events,
      (SELECT md5(coalesce(string_agg(
         concat_ws('|', event_id, label, status, coalesce(booking_id::text, '-'), fence,
                   coalesce(held_until::text, '-')),
         ',' ORDER BY event_id, label), '')) FROM seats) AS seats_digest,
      (SELECT md5(coalesce(string_agg(
         concat_ws('|', id, status, fence, updated_at), ',' ORDER BY id), '')) FROM bookings)
         AS bookings_digest,
      (SELECT md5(coalesce(string_agg(
         concat_ws('|', id, email, name, token_hash), ',' ORDER BY id), '')) FROM customers)
         AS customers_digest,
      (SELECT md5(coalesce(string_agg(
         concat_ws('|', id, name, venue, starts_at, currency, sections::text), ',' ORDER BY id), ''))
         FROM events) AS events_digest,
      (SELECT md5(coalesce(string_agg(
         concat_ws('|', id, booking_id, type, detail), ',' ORDER BY id), '')) FROM booking_timeline)
         AS timeline_digest
  `);
  return row;
}

function expectProblem(response: ApiResponse, status: number, code: string): void {
  expect({ status: response.status, body: response.body }).toMatchObject({ status });
  expect(response.headers['content-type']).toContain('application/problem+json');
  const body = response.body as Record<string, unknown>;
  expect(body).toEqual(
    expect.objectContaining({
      type: expect.any(String),
      title: expect.any(String),
      status,
      detail: expect.any(String),
      code,
    }),
  );
  expect(body.code).toMatch(/^[A-Z]+\.[A-Z_]+$/);
  expect((body.title as string).length).toBeGreaterThan(0);
  expect((body.detail as string).length).toBeGreaterThan(0);
}

function fieldsOf(response: ApiResponse): string[] {
  const errors = (response.body as { errors?: { field: string; messages: string[] }[] }).errors;
  expect(Array.isArray(errors)).toBe(true);
  for (const error of errors ?? []) {
    expect(typeof error.field).toBe('string');
    expect(error.messages.length).toBeGreaterThan(0);
  }
  return (errors ?? []).map((e) => e.field);
}

const tenMegabytes = (): Buffer => {
  const filler = Buffer.alloc(BIG_BODY_BYTES, 'a');
  return Buffer.concat([
    Buffer.from('{"email":"big@example.test","name":"'),
    filler,
    Buffer.from('"}'),
  ]);
};

const cases: Case[] = [
  // ---- body does not parse ----
  {
    name: 'POST /customers malformed JSON',
    send: () => api.post('/customers', undefined, json('{"email": "x@example.test", "name": ')),
    status: 400,
    code: 'REQUEST.MALFORMED_JSON',
  },
  {
    name: 'POST /bookings malformed JSON (trailing comma)',
    send: () =>
      api.post('/bookings', undefined, {
        ...json(`{"eventId": "${randomUUID()}", "seatIds": ["A1",]}`),
        token: alice.token,
      }),
    status: 400,
    code: 'REQUEST.MALFORMED_JSON',
  },
  {
    name: 'POST /customers empty body with content-type application/json',
    send: () => api.post('/customers', undefined, json('')),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['email', 'name'],
  },
  {
    name: 'POST /customers __proto__ key (prototype poisoning)',
    send: () =>
      api.post(
        '/customers',
        undefined,
        json('{"email":"proto@example.test","name":"P","__proto__":{"isAdmin":true}}'),
      ),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['__proto__'],
  },
  {
    name: 'POST /customers 10 MB body',
    send: () => api.post('/customers', undefined, json(tenMegabytes())),
    status: 413,
    code: 'REQUEST.TOO_LARGE',
  },
  {
    name: 'POST /customers content-type application/xml',
    send: () =>
      api.post('/customers', undefined, {
        raw: '<customer><email>x@example.test</email></customer>',
        headers: { 'content-type': 'application/xml' },
      }),
    status: 415,
    code: 'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'POST /admin/events content-type multipart/form-data',
    send: () =>
      api.post('/admin/events', undefined, {
        raw: '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nGala\r\n--x--\r\n',
        headers: { 'content-type': 'multipart/form-data; boundary=x' },
        token: TEST_ADMIN_TOKEN,
      }),
    status: 415,
    code: 'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'POST /customers JSON text without a content-type',
    send: () =>
      api.post('/customers', undefined, {
        raw: `{"email":"${randomUUID()}@example.test","name":"No type"}`,
      }),
    status: 415,
    code: 'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'POST /customers JSON array body',
    send: () => api.post('/customers', []),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['email', 'name'],
  },
  {
    name: 'POST /bookings JSON null body',
    send: () => api.post('/bookings', undefined, { ...json('null'), token: alice.token }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['eventId', 'seatIds'],
  },
  {
    name: 'POST /bookings no body at all',
    send: () => api.post('/bookings', undefined, { token: alice.token }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['eventId', 'seatIds'],
  },

  // ---- POST /customers schema ----
  {
    name: 'POST /customers missing every field',
    send: () => api.post('/customers', {}),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['email', 'name'],
  },
  {
    name: 'POST /customers wrong types (number email, null name)',
    send: () => api.post('/customers', { email: 42, name: null }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['email', 'name'],
  },
  {
    name: 'POST /customers not an email, empty name',
    send: () => api.post('/customers', { email: 'not-an-email', name: '' }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['email', 'name'],
  },
  {
    name: 'POST /customers over-long name (201 chars)',
    send: () =>
      api.post('/customers', { email: `${randomUUID()}@example.test`, name: 'n'.repeat(201) }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['name'],
  },
  {
    name: 'POST /customers unknown fields (isAdmin, id)',
    send: () =>
      api.post('/customers', {
        email: `${randomUUID()}@example.test`,
        name: 'Mallory',
        isAdmin: true,
        id: randomUUID(),
      }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['isAdmin', 'id'],
  },
  {
    name: 'POST /customers duplicate email (exact)',
    send: () => api.post('/customers', { email: alice.email, name: 'Impostor' }),
    status: 409,
    code: 'CUSTOMER.EMAIL_TAKEN',
  },
  {
    name: 'POST /customers duplicate email (other case, padded with spaces)',
    send: () =>
      api.post('/customers', { email: `  ${alice.email.toUpperCase()} `, name: 'Impostor' }),
    status: 409,
    code: 'CUSTOMER.EMAIL_TAKEN',
  },

  // ---- POST /admin/events schema and auth ----
  {
    name: 'POST /admin/events missing every field',
    send: () => asAdmin({}),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['name', 'startsAt', 'venue', 'sections', 'currency'],
  },
  {
    name: 'POST /admin/events wrong types (number name, string sections, null venue)',
    send: () => asAdmin(validEvent({ name: 123, sections: 'Floor', venue: null })),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['name', 'sections', 'venue'],
  },
  {
    name: 'POST /admin/events object for the sections array',
    send: () => asAdmin(validEvent({ sections: { 0: section({}) } })),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['sections'],
  },
  {
    name: 'POST /admin/events empty sections',
    send: () => asAdmin(validEvent({ sections: [] })),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['sections'],
  },
  {
    name: 'POST /admin/events rows -1, priceCents 1e12, seatsPerRow 1.5',
    send: () =>
      asAdmin(
        validEvent({ sections: [section({ rows: -1, priceCents: 1e12, seatsPerRow: 1.5 })] }),
      ),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['sections[0].rows', 'sections[0].priceCents', 'sections[0].seatsPerRow'],
  },
  {
    name: 'POST /admin/events numbers as strings, booleans, 1e400 (Infinity), negative price',
    send: () =>
      api.post('/admin/events', undefined, {
        ...json(
          JSON.stringify(validEvent({ sections: [] })).replace(
            '"sections":[]',
            '"sections":[{"name":"A","rows":"5","seatsPerRow":1e400,"priceCents":-1},' +
              '{"name":"B","rows":true,"seatsPerRow":12345678901234567890,"priceCents":null}]',
          ),
        ),
        token: TEST_ADMIN_TOKEN,
      }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: [
      'sections[0].rows',
      'sections[0].seatsPerRow',
      'sections[0].priceCents',
      'sections[1].rows',
      'sections[1].seatsPerRow',
      'sections[1].priceCents',
    ],
  },
  {
    name: 'POST /admin/events unknown fields at top level and in a section',
    send: () => asAdmin(validEvent({ id: randomUUID(), sections: [section({ vip: true })] })),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['id', 'sections[0].vip'],
  },
  {
    name: 'POST /admin/events currency XYZ, startsAt on 30 February',
    send: () => asAdmin(validEvent({ currency: 'XYZ', startsAt: '2027-02-30T19:30:00Z' })),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['currency', 'startsAt'],
  },
  {
    name: 'POST /admin/events currency EURO, startsAt as a number',
    send: () => asAdmin(validEvent({ currency: 'EURO', startsAt: 1_780_000_000 })),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['currency', 'startsAt'],
  },
  {
    name: 'POST /admin/events startsAt "tomorrow"',
    send: () => asAdmin(validEvent({ startsAt: 'tomorrow' })),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['startsAt'],
  },
  {
    name: 'POST /admin/events seat map over 10,000 seats (101 × 100)',
    send: () => asAdmin(validEvent({ sections: [section({ rows: 101, seatsPerRow: 100 })] })),
    status: 422,
    code: 'CATALOG.TOO_MANY_SEATS',
    fields: ['sections'],
  },
  {
    name: 'POST /admin/events 10,000 × 10,000 seats in each of 100 sections',
    send: () =>
      asAdmin(
        validEvent({
          sections: Array.from({ length: 100 }, (_, i) =>
            section({ name: `S${i}`, rows: 10_000, seatsPerRow: 10_000 }),
          ),
        }),
      ),
    status: 422,
    code: 'CATALOG.TOO_MANY_SEATS',
    fields: ['sections'],
  },
  {
    name: 'POST /admin/events duplicate section names',
    send: () => asAdmin(validEvent({ sections: [section({}), section({})] })),
    status: 422,
    code: 'CATALOG.DUPLICATE_SECTIONS',
    fields: ['sections'],
  },
  {
    name: 'POST /admin/events with a customer token',
    send: () => api.post('/admin/events', validEvent(), { token: alice.token }),
    status: 403,
    code: 'AUTH.FORBIDDEN',
  },
  {
    name: 'POST /admin/events with a customer token and a bad body (auth before validation)',
    send: () => api.post('/admin/events', { nonsense: true }, { token: alice.token }),
    status: 403,
    code: 'AUTH.FORBIDDEN',
  },
  {
    name: 'POST /admin/events without Authorization',
    send: () => api.post('/admin/events', validEvent()),
    status: 401,
    code: 'AUTH.UNAUTHORIZED',
  },

  // ---- GET /events, /events/{id}, /events/{id}/seats ----
  {
    name: 'GET /events?limit=0',
    send: () => api.get('/events?limit=0'),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['limit'],
  },
  {
    name: 'GET /events?limit=1000&offset=-1',
    send: () => api.get('/events?limit=1000&offset=-1'),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['limit', 'offset'],
  },
  {
    name: 'GET /events?limit=abc&offset=1.5',
    send: () => api.get('/events?limit=abc&offset=1.5'),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['limit', 'offset'],
  },
  {
    name: 'GET /events?limit=1&limit=2 (repeated parameter) and an unknown one',
    send: () => api.get('/events?limit=1&limit=2&sort=name'),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['limit', 'sort'],
  },
  {
    name: 'GET /events?limit[]=1 (bracket syntax is an unknown parameter)',
    send: () => api.get('/events?limit[]=1'),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['limit[]'],
  },
  {
    name: 'GET /events/{id} non-UUID id',
    send: () => api.get('/events/not-a-uuid'),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['eventId'],
  },
  {
    name: 'GET /events/{id} unknown event (valid UUID)',
    send: () => api.get(`/events/${randomUUID()}`),
    status: 404,
    code: 'CATALOG.EVENT_NOT_FOUND',
  },
  {
    name: 'GET /events/{id}/seats non-UUID id (SQL-ish)',
    send: () => api.get(`/events/${encodeURIComponent("1' OR '1'='1")}/seats`),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['eventId'],
  },
  {
    name: 'GET /events/{id}/seats unknown event (valid UUID)',
    send: () => api.get(`/events/${randomUUID()}/seats`),
    status: 404,
    code: 'CATALOG.EVENT_NOT_FOUND',
  },

  // ---- POST /bookings ----
  {
    name: 'POST /bookings missing every field',
    send: () => holdAs(() => alice, {}),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['eventId', 'seatIds'],
  },
  {
    name: 'POST /bookings string for the seatIds array, non-UUID eventId',
    send: () => holdAs(() => alice, { eventId: 'event-1', seatIds: 'A3' }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['eventId', 'seatIds'],
  },
  {
    name: 'POST /bookings object for the seatIds array, number for eventId',
    send: () => holdAs(() => alice, { eventId: 42, seatIds: { 0: 'A3' } }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['eventId', 'seatIds'],
  },
  {
    name: 'POST /bookings nulls and numbers inside seatIds',
    send: () => holdAs(() => alice, { eventId, seatIds: ['A3', null, 4] }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['seatIds'],
  },
  {
    name: 'POST /bookings empty seatIds',
    send: () => holdAs(() => alice, { eventId, seatIds: [] }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['seatIds'],
  },
  {
    name: 'POST /bookings empty-string and over-long seat labels',
    send: () => holdAs(() => alice, { eventId, seatIds: ['', 'A'.repeat(17)] }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['seatIds'],
  },
  {
    name: 'POST /bookings 1,001 seat labels',
    send: () =>
      holdAs(() => alice, { eventId, seatIds: Array.from({ length: 1001 }, (_, i) => `Z${i}`) }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['seatIds'],
  },
  {
    name: 'POST /bookings unknown field',
    send: () => holdAs(() => alice, { eventId, seatIds: ['A3'], customerId: bob.id }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['customerId'],
  },
  {
    name: 'POST /bookings unknown event (valid UUID)',
    send: () => holdAs(() => alice, { eventId: randomUUID(), seatIds: ['A3'] }),
    status: 404,
    code: 'CATALOG.EVENT_NOT_FOUND',
  },
  {
    name: 'POST /bookings labels differing by case or whitespace',
    send: () => holdAs(() => alice, { eventId, seatIds: ['a3', ' A4', 'A5 ', 'A6'] }),
    status: 422,
    code: 'BOOKING.UNKNOWN_SEATS',
    fields: ['seatIds'],
    seats: { member: 'unknownSeats', labels: ['a3', ' A4', 'A5 '] },
    detail: 'a3',
  },
  {
    name: 'POST /bookings labels with zero-width, RTL and fullwidth characters',
    send: () =>
      api.post('/bookings', undefined, {
        ...json(`{"eventId":"${eventId}","seatIds":["A\\u200b3","\\u200fA4","\\uff215"]}`),
        token: alice.token,
      }),
    status: 422,
    code: 'BOOKING.UNKNOWN_SEATS',
    fields: ['seatIds'],
    seats: {
      member: 'unknownSeats',
      labels: ['A\u200b3', '\u200fA4', '\uff215'],
    },
  },
  {
    name: 'POST /bookings labels with NUL and a lone surrogate',
    send: () =>
      api.post('/bookings', undefined, {
        ...json(`{"eventId":"${eventId}","seatIds":["A1","A\\u00006","\\ud800"]}`),
        token: alice.token,
      }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['seatIds[1]', 'seatIds[2]'],
  },
  {
    name: 'POST /bookings a label beyond the seat map (D1, A11)',
    send: () => holdAs(() => alice, { eventId, seatIds: ['A3', 'D1', 'A11'] }),
    status: 422,
    code: 'BOOKING.UNKNOWN_SEATS',
    seats: { member: 'unknownSeats', labels: ['D1', 'A11'] },
  },
  {
    name: 'POST /bookings duplicate labels',
    send: () => holdAs(() => alice, { eventId, seatIds: ['A3', 'A4', 'A3'] }),
    status: 422,
    code: 'BOOKING.DUPLICATE_SEATS',
    fields: ['seatIds'],
    seats: { member: 'duplicateSeats', labels: ['A3'] },
    detail: 'A3',
  },
  {
    name: 'POST /bookings 11 seats, over MAX_SEATS_PER_BOOKING (10)',
    send: () =>
      holdAs(() => alice, {
        eventId,
        seatIds: [...Array.from({ length: 10 }, (_, i) => `B${i + 1}`), 'C1'],
      }),
    status: 422,
    code: 'BOOKING.TOO_MANY_SEATS',
    fields: ['seatIds'],
  },
  {
    name: 'POST /bookings a seat another customer holds, eventId in upper case (misses the Redis key)',
    send: () => holdAs(() => bob, { eventId: eventId.toUpperCase(), seatIds: ['A1'] }),
    status: 409,
    code: 'BOOKING.SEAT_UNAVAILABLE',
    seats: { member: 'conflictingSeats', labels: ['A1'] },
  },
  {
    name: 'POST /bookings a free and a held seat, decided by PostgreSQL (Redis key missed)',
    send: () => holdAs(() => bob, { eventId: eventId.toUpperCase(), seatIds: ['A3', 'A1'] }),
    status: 409,
    code: 'BOOKING.SEAT_UNAVAILABLE',
    seats: { member: 'conflictingSeats', labels: ['A1'] },
    bug: 'conflictingSeats also names A3, which this request itself just held inside its rolled-back transaction',
  },
  {
    name: 'POST /bookings seats another customer holds',
    send: () => holdAs(() => bob, { eventId, seatIds: ['A2', 'A3'] }),
    status: 409,
    code: 'BOOKING.SEAT_UNAVAILABLE',
    seats: { member: 'conflictingSeats', labels: ['A2'] },
  },

  // ---- authentication ----
  {
    name: 'POST /bookings without Authorization',
    send: () => api.post('/bookings', { eventId, seatIds: ['A3'] }),
    status: 401,
    code: 'AUTH.UNAUTHORIZED',
  },
  {
    name: 'GET /bookings with Authorization: Basic',
    send: () => api.get('/bookings', { headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' } }),
    status: 401,
    code: 'AUTH.UNAUTHORIZED',
  },
  {
    name: 'GET /bookings with "Bearer" and no token',
    send: () => api.get('/bookings', { headers: { authorization: 'Bearer' } }),
    status: 401,
    code: 'AUTH.UNAUTHORIZED',
  },
  {
    name: 'GET /bookings with a token containing a space',
    send: () => api.get('/bookings', { headers: { authorization: `Bearer ${alice.token} x` } }),
    status: 401,
    code: 'AUTH.UNAUTHORIZED',
  },
  {
    name: 'GET /bookings with a 4 KB token',
    send: () => api.get('/bookings', { token: 'x'.repeat(4096) }),
    status: 401,
    code: 'AUTH.UNAUTHORIZED',
  },
  {
    name: 'GET /bookings with an unknown token',
    send: () => api.get('/bookings', { token: `slk_${randomUUID()}` }),
    status: 401,
    code: 'AUTH.UNAUTHORIZED',
  },
  {
    name: 'GET /bookings with the admin token (not a customer)',
    send: () => api.get('/bookings', { token: TEST_ADMIN_TOKEN }),
    status: 401,
    code: 'AUTH.UNAUTHORIZED',
  },

  // ---- GET /bookings, /bookings/{id}, DELETE, timeline ----
  {
    name: 'GET /bookings?limit=0&offset=-1',
    send: () => api.get('/bookings?limit=0&offset=-1', { token: alice.token }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['limit', 'offset'],
  },
  {
    name: 'GET /bookings?limit=101&offset=100001',
    send: () => api.get('/bookings?limit=101&offset=100001', { token: alice.token }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['limit', 'offset'],
  },
  {
    name: 'GET /bookings?limit=&offset=abc',
    send: () => api.get('/bookings?limit=&offset=abc', { token: alice.token }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['limit', 'offset'],
  },
  {
    name: 'GET /bookings/{id} non-UUID id',
    send: () => api.get('/bookings/123', { token: alice.token }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['id'],
  },
  {
    name: 'DELETE /bookings/{id} non-UUID id',
    send: () => api.delete(`/bookings/${heldBookingId}x`, { token: alice.token }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['id'],
  },
  {
    name: 'GET /bookings/{id}/events non-UUID id',
    send: () => api.get('/bookings/%00/events', { token: alice.token }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['id'],
  },
  {
    name: 'GET /bookings/{id} unknown booking (valid UUID)',
    send: () => api.get(`/bookings/${randomUUID()}`, { token: alice.token }),
    status: 404,
    code: 'BOOKING.NOT_FOUND',
  },
  {
    name: "GET /bookings/{id} another customer's booking",
    send: () => api.get(`/bookings/${heldBookingId}`, { token: bob.token }),
    status: 404,
    code: 'BOOKING.NOT_FOUND',
  },
  {
    name: "DELETE /bookings/{id} another customer's booking",
    send: () => api.delete(`/bookings/${heldBookingId}`, { token: bob.token }),
    status: 404,
    code: 'BOOKING.NOT_FOUND',
  },
  {
    name: "GET /bookings/{id}/events another customer's booking",
    send: () => api.get(`/bookings/${heldBookingId}/events`, { token: bob.token }),
    status: 404,
    code: 'BOOKING.NOT_FOUND',
  },
  {
    name: 'DELETE /bookings/{id} without Authorization',
    send: () => api.delete(`/bookings/${heldBookingId}`),
    status: 401,
    code: 'AUTH.UNAUTHORIZED',
  },

  // ---- payments ----
  {
    name: 'POST /bookings/{id}/payments without Idempotency-Key',
    send: () => payAs(() => alice, heldBookingId, { paymentMethod: 'pm_card_visa' }, null),
    status: 400,
    code: 'IDEMPOTENCY.KEY_REQUIRED',
    fields: ['Idempotency-Key'],
  },
  {
    name: 'POST /bookings/{id}/payments with a 256-character Idempotency-Key',
    send: () =>
      payAs(() => alice, heldBookingId, { paymentMethod: 'pm_card_visa' }, 'k'.repeat(256)),
    status: 400,
    code: 'IDEMPOTENCY.KEY_INVALID',
    fields: ['Idempotency-Key'],
  },
  {
    name: 'POST /bookings/{id}/payments paymentMethod missing',
    send: () => payAs(() => alice, heldBookingId, {}),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['paymentMethod'],
  },
  {
    name: 'POST /bookings/{id}/payments paymentMethod a number',
    send: () => payAs(() => alice, heldBookingId, { paymentMethod: 4242 }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['paymentMethod'],
  },
  {
    name: 'POST /bookings/{id}/payments paymentMethod not a pm_ id',
    send: () => payAs(() => alice, heldBookingId, { paymentMethod: '4242 4242 4242 4242' }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['paymentMethod'],
  },
  {
    name: 'POST /bookings/{id}/payments with an amount the client chose',
    send: () =>
      payAs(() => alice, heldBookingId, { paymentMethod: 'pm_card_visa', amountCents: 1 }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['amountCents'],
  },
  {
    name: 'POST /bookings/{id}/payments non-UUID id',
    send: () => payAs(() => alice, 'abc', { paymentMethod: 'pm_card_visa' }),
    status: 400,
    code: 'REQUEST.VALIDATION_FAILED',
    fields: ['id'],
  },
  {
    name: "POST /bookings/{id}/payments another customer's booking",
    send: () => payAs(() => bob, heldBookingId, { paymentMethod: 'pm_card_visa' }),
    status: 404,
    code: 'BOOKING.NOT_FOUND',
  },
  {
    name: 'POST /bookings/{id}/payments without Authorization',
    send: () =>
      api.post(
        `/bookings/${heldBookingId}/payments`,
        { paymentMethod: 'pm_card_visa' },
        { headers: { 'idempotency-key': randomUUID() } },
      ),
    status: 401,
    code: 'AUTH.UNAUTHORIZED',
  },
  {
    name: "GET /bookings/{id}/payments another customer's booking",
    send: () => api.get(`/bookings/${heldBookingId}/payments`, { token: bob.token }),
    status: 404,
    code: 'BOOKING.NOT_FOUND',
  },
  {
    name: 'POST /payments/webhook without a signature',
    send: () => api.post('/payments/webhook', { id: 'evt_1', type: 'x', data: { object: {} } }),
    status: 400,
    code: 'WEBHOOK.INVALID_SIGNATURE',
  },
  {
    // The signature is checked on the raw bytes before anything parses them.
    name: 'POST /payments/webhook malformed JSON, unsigned',
    send: () =>
      api.request(
        'POST',
        '/payments/webhook',
        undefined,
        json('{"id":', { 'gateway-signature': 't=1,v1=00' }),
      ),
    status: 400,
    code: 'WEBHOOK.INVALID_SIGNATURE',
  },
  {
    name: 'POST /payments/webhook a garbage signature header',
    send: () =>
      api.request(
        'POST',
        '/payments/webhook',
        undefined,
        json('{"id":"evt_1","type":"x","data":{"object":{}}}', {
          'gateway-signature': 'v1=zz,t=x',
        }),
      ),
    status: 400,
    code: 'WEBHOOK.INVALID_SIGNATURE',
  },

  // ---- routes that do not exist ----
  {
    name: 'PUT /bookings/{id} (no such route)',
    send: () =>
      api.request(
        'PUT',
        `/bookings/${heldBookingId}`,
        { status: 'confirmed' },
        { token: alice.token },
      ),
    status: 404,
    code: 'HTTP.NOT_FOUND',
  },
  {
    name: 'GET /nope',
    send: () => api.get('/nope'),
    status: 404,
    code: 'HTTP.NOT_FOUND',
  },
];

beforeAll(async () => {
  // The snapshot covers the whole shared test database: the sweeper must not expire holds that
  // earlier test files left behind (some with a TTL of seconds) between the two snapshots.
  api = await TestApp.start({ SWEEP_INTERVAL_MS: '3600000' });
  db = api.app.get(DataSource);
  // Record every answer of this file, fixtures included.
  const send = api.request.bind(api);
  api.request = (async (method: string, path: string, body?: unknown, options?: RequestOptions) => {
    const response = await send(method, path, body, options);
    answers.push({
      test: expect.getState().currentTestName ?? '(setup)',
      request: `${method} ${path.slice(0, 120)}`,
      status: response.status,
    });
    return response;
  }) as TestApp['request'];

  // A: A1–A10, B: B1–B10 (Stalls), C: C1–C10 (Balcony).
  eventId = await createEvent(api, [
    { name: 'Stalls', rows: 2, seatsPerRow: 10, priceCents: 5000 },
    { name: 'Balcony', rows: 1, seatsPerRow: 10, priceCents: 3000 },
  ]);
  alice = await registerCustomer(api);
  bob = await registerCustomer(api);
  const hold = await api.post(
    '/bookings',
    { eventId, seatIds: ['A1', 'A2'] },
    { token: alice.token },
  );
  if (hold.status !== 201) throw new Error(`hold: ${hold.status} ${JSON.stringify(hold.body)}`);
  heldBookingId = hold.body.id;
});

afterAll(async () => {
  await api?.close();
});

describe('bad input: right 4xx, problem+json, nothing changed', () => {
  let before: Record<string, string | number>;
  let heldBefore: ApiResponse;

  beforeAll(async () => {
    heldBefore = await api.get(`/bookings/${heldBookingId}`, { token: alice.token });
    expect(heldBefore.status).toBe(200);
    before = await snapshot();
  });

  it('has at least 30 distinct cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  async function check(c: Case): Promise<void> {
    const response = await c.send();
    expectProblem(response, c.status, c.code);
    if (c.status === 400 && c.code === 'REQUEST.VALIDATION_FAILED') {
      expect(c.fields?.length).toBeGreaterThan(0);
    }
    if (c.fields) {
      const named = fieldsOf(response);
      expect(named).toEqual(expect.arrayContaining(c.fields));
      // Every named field also shows up in the human-readable detail.
      if (c.status === 400) {
        for (const field of c.fields) expect(response.body.detail).toContain(field);
      }
    }
    if (c.seats) {
      expect(response.body[c.seats.member]).toEqual(c.seats.labels);
    }
    if (c.detail) expect(response.body.detail).toContain(c.detail);
    if (c.status === 401) expect(response.headers['www-authenticate']).toBe('Bearer');
  }

  it.each(cases.filter((c) => !c.bug))('$status $code: $name', check);

  const buggy = cases.filter((c) => c.bug);
  if (buggy.length > 0) it.each(buggy)('FIXED BUG ($bug): $status $code: $name', check);

  it('changed nothing: same rows in every table, the attacked booking and the original customer intact', async () => {
    expect(await snapshot()).toEqual(before);

    const held = await api.get(`/bookings/${heldBookingId}`, { token: alice.token });
    expect(held.status).toBe(200);
    expect(held.body).toEqual(heldBefore.body);
    expect(held.body.status).toBe('held');
    const timeline = await api.get(`/bookings/${heldBookingId}/events`, { token: alice.token });
    expect(timeline.body.map((e: { type: string }) => e.type)).toEqual(['booking.held']);

    // The duplicate registrations did not take over Alice: her token still resolves to her.
    const [row] = await db.query(`SELECT email, name FROM customers WHERE id = $1`, [alice.id]);
    expect(row).toEqual({ email: alice.email, name: 'Test Customer' });
    const mine = await api.get('/bookings', { token: alice.token });
    expect(mine.status).toBe(200);
    expect(mine.body.map((b: { id: string }) => b.id)).toEqual([heldBookingId]);
  });
});

/** Any answer but a 5xx; a 4xx must be a well-formed problem. */
function expectSane(response: ApiResponse): void {
  expect({ status: response.status, body: response.body }).toEqual(
    expect.objectContaining({ status: expect.any(Number) }),
  );
  expect(response.status).toBeLessThan(500);
  if (response.status >= 400) expectProblem(response, response.status, response.body.code);
}

/** App bugs this file found, since fixed; each test states the behaviour the API now has. */
const BUG = {
  nul: 'FIXED BUG (NUL): "\\u0000" in a string reaches PostgreSQL, which refuses it → 500',
  surrogateStored:
    'FIXED BUG (lone surrogate stored as U+FFFD): the 201 echoes the lone surrogate, the row holds U+FFFD',
  surrogateJsonb:
    'FIXED BUG (lone surrogate in sections jsonb): "invalid input syntax for type json" → 500',
  surrogateEmail:
    'FIXED BUG (lone surrogate in email): URIError in validator isEmail/isByteLength → 500',
};

interface OddString {
  label: string;
  /** The value as JSON source text, so lone surrogates travel escaped. */
  json: string;
  customerBug?: string;
  eventBug?: string;
}

const oddStrings: OddString[] = [
  {
    label: 'lone high surrogate',
    json: '"\\ud800"',
    customerBug: BUG.surrogateStored,
    eventBug: BUG.surrogateJsonb,
  },
  {
    label: 'lone low surrogate amid text',
    json: '"Ann\\udc00a"',
    customerBug: BUG.surrogateStored,
    eventBug: BUG.surrogateJsonb,
  },
  { label: 'zero-width space only', json: '"\\u200b"' },
  { label: 'RTL override', json: '"\\u202eevil\\u202c.exe"' },
  { label: 'RTL and LTR marks', json: '"\\u200f\\u200eName"' },
  { label: 'combining marks', json: '"Z\\u0351\\u0352\\u0353\\u0354"' },
  { label: 'emoji and astral characters', json: '"\\ud83c\\udfad Opera \\ud834\\udd1e"' },
  { label: 'C0/C1 control characters', json: '"\\u0007\\u001b[31m\\u0085"' },
  { label: 'BOM', json: '"\\ufeffName"' },
  { label: 'NUL character', json: '"nul\\u0000name"', customerBug: BUG.nul, eventBug: BUG.nul },
];

describe('odd Unicode in names: accepted or refused, never a 5xx', () => {
  for (const odd of oddStrings) {
    const title = `POST /customers with a ${odd.label} name`;
    it(odd.customerBug ? `${odd.customerBug}: ${title}` : title, async () => {
      const response = await api.post(
        '/customers',
        undefined,
        json(`{"email":"${randomUUID()}@example.test","name":${odd.json}}`),
      );
      expectSane(response);
      if (response.status < 400) {
        expect(response.status).toBe(201);
        // What the answer says was registered is what was stored.
        const [row] = await db.query(`SELECT name FROM customers WHERE id = $1`, [
          response.body.id,
        ]);
        expect(row.name).toBe(JSON.parse(odd.json));
        expect(response.body.name).toBe(row.name);
      }
    });
  }

  for (const odd of oddStrings) {
    const title = `POST /admin/events with a ${odd.label} in name, venue and section name`;
    it(odd.eventBug ? `${odd.eventBug}: ${title}` : title, async () => {
      const body = JSON.stringify(validEvent())
        .replace('"name":"Bad input night"', `"name":${odd.json}`)
        .replace('"venue":"Test Hall"', `"venue":${odd.json}`)
        .replace('"name":"Floor"', `"name":${odd.json}`);
      const response = await api.post('/admin/events', undefined, {
        ...json(body),
        token: TEST_ADMIN_TOKEN,
      });
      expectSane(response);
      if (response.status >= 400) return;
      expect(response.status).toBe(201);
      const read = await api.get(`/events/${response.body.id}`);
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({
        name: JSON.parse(odd.json),
        venue: JSON.parse(odd.json),
        sections: [{ name: JSON.parse(odd.json) }],
      });
      const seats = await api.get(`/events/${response.body.id}/seats`);
      expect(seats.status).toBe(200);
      expect(seats.body[0].section).toBe(JSON.parse(odd.json));
    });
  }

  const oddEmails: [label: string, template: string, bug?: string][] = [
    ['a unicode local part', 'ü-{id}@example.test'],
    ['an IDN domain', 'x-{id}@bücher.example'],
    ['a zero-width space', 'x\u200b-{id}@example.test'],
    ['an RTL mark', '\u200fx-{id}@example.test'],
    ['a lone surrogate', '\ud800-{id}@example.test', BUG.surrogateEmail],
  ];
  for (const [label, template, bug] of oddEmails) {
    const title = `POST /customers with an email with ${label}`;
    it(bug ? `${bug}: ${title}` : title, async () => {
      const response = await api.post('/customers', {
        email: template.replace('{id}', randomUUID()),
        name: 'Unicode',
      });
      expectSane(response);
    });
  }
});

describe('FIXED BUGS beyond Unicode', () => {
  // Formats class-validator's isISO8601 accepts but PostgreSQL's timestamptz input does not.
  it.each(['2027-W01-1', '2027-06', '2027', '2027-06-01T19', '2027-06-01T19:30:00,5Z'])(
    'FIXED BUG (startsAt passes validation, PostgreSQL refuses it → 500): startsAt %s → 400',
    async (startsAt) => {
      const response = await asAdmin(validEvent({ startsAt }));
      expectProblem(response, 400, 'REQUEST.VALIDATION_FAILED');
      expect(fieldsOf(response)).toContain('startsAt');
    },
  );

  it('FIXED BUG (startsAt without offset is accepted, read in the server time zone): 2027-06-01T19:30:00 → 400', async () => {
    // The DTO documents "ISO 8601 date-time with offset".
    const response = await asAdmin(validEvent({ startsAt: '2027-06-01T19:30:00' }));
    expectProblem(response, 400, 'REQUEST.VALIDATION_FAILED');
    expect(fieldsOf(response)).toContain('startsAt');
  });

  it('FIXED BUG (lower-case currency is accepted and stored as "eur"): currency eur → 400', async () => {
    const response = await asAdmin(validEvent({ currency: 'eur' }));
    expectProblem(response, 400, 'REQUEST.VALIDATION_FAILED');
    expect(fieldsOf(response)).toContain('currency');
  });

  it('FIXED BUG (deeply nested JSON overflows the stack in class-transformer → 500): 100,000 nested arrays → 400', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000); // 200 KB, under the body limit
    const response = await api.post('/customers', undefined, json(deep));
    expectProblem(response, 400, response.body.code);
  });

  it("FIXED BUG (Fastify's bad-URL error bypasses the problem filter): GET /events/%E0%A4%A → 400 problem+json", async () => {
    const response = await api.get('/events/%E0%A4%A');
    expectProblem(response, 400, response.body.code);
  });

  it('FIXED BUG (form bodies are parsed: the API is "all JSON"): POST /customers urlencoded → 415', async () => {
    const response = await api.post('/customers', undefined, {
      raw: `email=${randomUUID()}%40example.test&name=Form`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectProblem(response, 415, 'REQUEST.UNSUPPORTED_MEDIA_TYPE');
  });

  it('FIXED BUG (text/plain bodies are parsed as a string, then "every field missing"): POST /customers text/plain → 415', async () => {
    const response = await api.post('/customers', undefined, {
      raw: `{"email":"${randomUUID()}@example.test","name":"Text"}`,
      headers: { 'content-type': 'text/plain' },
    });
    expectProblem(response, 415, 'REQUEST.UNSUPPORTED_MEDIA_TYPE');
  });

  // Found by test/fuzz.e2e-spec.ts: the body parser takes a blank body as no body, the signature
  // over it checks out, and the webhook service's JSON.parse('') threw.
  it.each(['', ' \n', '{"id":', '{"id":"evt_1","type":"x","data":{"object":{}}}x'])(
    'FIXED BUG (a correctly signed blank or broken gateway webhook body reaches JSON.parse → 500): %j → 400',
    async (raw) => {
      const secret = api.app.get(AppConfigService).secret('GATEWAY_WEBHOOK_SECRET');
      const response = await api.post(
        '/payments/webhook',
        undefined,
        json(raw, { 'gateway-signature': signWebhook(secret, raw) }),
      );
      expectProblem(response, 400, 'WEBHOOK.MALFORMED_EVENT');
    },
  );

  it('FIXED BUG (an unknown token on an admin route is 403, documented as "valid but not allowed"): → 401', async () => {
    const response = await api.post('/admin/events', validEvent(), { token: 'not-a-real-token' });
    expectProblem(response, 401, 'AUTH.UNAUTHORIZED');
  });
});

describe('the whole file', () => {
  it('never got a 5xx outside the known bugs', () => {
    expect(answers.length).toBeGreaterThan(cases.length);
    expect(answers.filter((a) => a.status >= 500 && !a.test.includes('FIXED BUG'))).toEqual([]);
  });
});

import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { checkLedger } from '../apps/api/src/ledger/ledger-check';
import {
  countStatuses,
  createEvent,
  type Customer,
  holdUnits,
  registerCustomer,
  registerCustomers,
} from './support/fixtures';
import { eventually, PaymentStack } from './support/payment-stack';
import { expectNoServerErrors, expectProblem } from './support/problem-assertions';
import { RedisServer } from './support/redis-server';
import type { ApiResponse } from './support/test-app';
import { TestApp } from './support/test-app';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './support/test-env';

/**
 * General admission: a section of `capacity` units sold by quantity
 * (`POST /bookings {eventId, section, quantity}`). Redis keeps an admission count per GA section
 * (`permits:ga:{event:<id>}:<n>`, seeded from PostgreSQL, TTL about 10 s); PostgreSQL's unit rows
 * decide. Real PostgreSQL, real Redis (a private redis-server wherever Redis is hurt) and a real
 * gateway simulator; nothing mocked.
 */

const GA = 'Floor';

/** The Redis admission counter of the event's `n`-th GA section. */
const permitKey = (eventId: string, n = 1) => `permits:ga:{event:${eventId}}:${n}`;

/** A small seeded PRNG (mulberry32), so a wave's quantities can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` quantities of 1–4 from `seed`. */
function quantitiesFrom(seed: number, count: number): number[] {
  const next = random(seed);
  return Array.from({ length: count }, () => 1 + Math.floor(next() * 4));
}

/** The fields a 400/422 problem names in `errors[].field`. */
function fieldsOf(response: ApiResponse): string[] {
  const errors = (response.body as { errors?: { field: string }[] }).errors ?? [];
  return errors.map((error) => error.field);
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

const SOLD_OUT_REDIS = 'seatlock_holds_total{outcome="sold_out_redis"}';
const SOLD_OUT_SEEDED = 'seatlock_holds_total{outcome="sold_out_seeded"}';
const FALLBACK_UNREACHABLE = 'seatlock_hold_fallbacks_total{reason="redis_unreachable"}';

async function metricOf(api: TestApp, name: string): Promise<number> {
  return metric((await api.get('/metrics')).body as string, name);
}

/** The section of that name as `GET /events/{id}` shows it. */
async function sectionOf(api: TestApp, eventId: string, name = GA) {
  const event = await api.get(`/events/${eventId}`);
  expect(event.status).toBe(200);
  const section = event.body.sections.find((s: { name: string }) => s.name === name);
  expect(section).toBeDefined();
  return section as { capacity: number; available: number };
}

async function availableOf(api: TestApp, eventId: string, name = GA): Promise<number> {
  return (await sectionOf(api, eventId, name)).available;
}

async function mustHoldUnits(
  api: TestApp,
  who: Customer,
  eventId: string,
  quantity: number,
  section = GA,
) {
  const response = await holdUnits(api, who, eventId, section, quantity);
  if (response.status !== 201) {
    throw new Error(`GA hold: ${response.status} ${JSON.stringify(response.body)}`);
  }
  expect(response.body.status).toBe('held');
  expect(response.body.seats).toHaveLength(quantity);
  return response.body as { id: string; seats: string[]; amountCents: number; status: string };
}

function expectSoldOut(response: ApiResponse, available?: number): void {
  expectProblem(response, 409, 'BOOKING.SOLD_OUT');
  expect(typeof response.body.available).toBe('number');
  if (available !== undefined) expect(response.body.available).toBe(available);
}

interface WaveOutcome {
  held: number;
  won: number;
  free: number;
  /** Quantities of the refused requests. */
  refused: number[];
  /** Refused requests whose quantity was not more than what was left free at the end. */
  refusedThatFit: number[];
  /** SOLD_OUT answers whose own body says at least `quantity` were available. */
  selfContradicting: { quantity: number; available: number }[];
  losers: number[];
}

/**
 * Everything a wave of GA holds must leave true, whatever the Redis weather: no 5xx, every loser a
 * 409 SOLD_OUT, no unit in two bookings, the seats table agreeing with the 201s unit by unit, never
 * more held than the capacity, and `available` = capacity − held.
 */
async function checkWave(
  api: TestApp,
  eventId: string,
  capacity: number,
  quantities: number[],
  responses: ApiResponse[],
): Promise<WaveOutcome> {
  const db = api.app.get(DataSource);
  expectNoServerErrors(responses);
  const refused: number[] = [];
  const losers: number[] = [];
  const selfContradicting: { quantity: number; available: number }[] = [];
  const claimed = new Map<string, string>();
  const repeated: string[] = [];
  responses.forEach((response, i) => {
    if (response.status === 201) {
      expect(response.body.status).toBe('held');
      expect(response.body.seats).toHaveLength(quantities[i]);
      for (const label of response.body.seats as string[]) {
        if (claimed.has(label)) repeated.push(label);
        claimed.set(label, response.body.id);
      }
      return;
    }
    expectSoldOut(response);
    refused.push(quantities[i]);
    losers.push(i);
    if (response.body.available >= quantities[i]) {
      selfContradicting.push({ quantity: quantities[i], available: response.body.available });
    }
  });
  // No unit in two answers.
  expect(repeated).toEqual([]);
  const held = claimed.size;
  expect(held).toBeLessThanOrEqual(capacity);

  // The seats table: exactly the claimed units are taken, each by the booking that claimed it.
  const rows = await db.query<{ label: string; booking_id: string; status: string }[]>(
    `SELECT label, booking_id, status FROM seats
      WHERE event_id = $1 AND section = $2 AND status <> 'free' ORDER BY label`,
    [eventId, GA],
  );
  expect(rows.every((row) => row.status === 'held')).toBe(true);
  expect(Object.fromEntries(rows.map((row) => [row.label, row.booking_id]))).toEqual(
    Object.fromEntries([...claimed].sort()),
  );
  // No unit in two live bookings either (the bookings' own label arrays).
  const twice = await db.query(
    `SELECT label, count(*)::int AS bookings FROM bookings, unnest(seat_labels) AS label
      WHERE event_id = $1 AND status IN ('held', 'confirmed')
      GROUP BY label HAVING count(*) > 1`,
    [eventId],
  );
  expect(twice).toEqual([]);
  const [{ bookings }] = await db.query<{ bookings: number }[]>(
    `SELECT count(*)::int AS bookings FROM bookings WHERE event_id = $1`,
    [eventId],
  );
  const won = responses.filter((r) => r.status === 201).length;
  expect(bookings).toBe(won);

  const free = capacity - held;
  expect(await availableOf(api, eventId)).toBe(free);
  return {
    held,
    won,
    free,
    refused,
    refusedThatFit: refused.filter((quantity) => quantity <= free),
    selfContradicting,
    losers,
  };
}

/**
 * Holds what is left one unit at a time (by customers who hold nothing yet) until refused: nothing
 * a wave left behind may be lost, nor may one unit more be sold. Answers how many it held.
 */
async function topUp(api: TestApp, eventId: string, customers: Customer[]): Promise<number> {
  let taken = 0;
  for (const who of customers) {
    const response = await holdUnits(api, who, eventId, GA, 1);
    if (response.status !== 201) {
      expectSoldOut(response, 0);
      return taken;
    }
    taken += 1;
  }
  throw new Error('topUp: ran out of customers before the section sold out');
}

describe('general admission (real PostgreSQL, Redis and gateway simulator)', () => {
  describe('with a healthy Redis', () => {
    let api: TestApp;
    /** MAX_SEATS_PER_CUSTOMER_PER_EVENT 5. */
    let capped: TestApp;
    let db: DataSource;
    let redis: Redis;

    beforeAll(async () => {
      api = await TestApp.start();
      capped = await TestApp.start({ MAX_SEATS_PER_CUSTOMER_PER_EVENT: '5' });
      db = api.app.get(DataSource);
      // Read-only here: the shared Redis is everybody's.
      redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 0 });
    });

    afterAll(async () => {
      redis?.disconnect();
      for (const app of [api, capped]) await app?.close();
    });

    it('shape: a mixed event shows both kinds of section, counts GA units, lists seated seats only, and hands out unique units', async () => {
      const created = await api.post(
        '/admin/events',
        {
          name: 'Mixed night',
          startsAt: '2027-06-01T19:30:00Z',
          venue: 'Test Hall',
          currency: 'EUR',
          sections: [
            { name: 'Stalls', rows: 2, seatsPerRow: 5, priceCents: 5000 },
            { name: GA, capacity: 10, priceCents: 2000 },
          ],
        },
        { token: TEST_ADMIN_TOKEN },
      );
      expect(created.status).toBe(201);
      const eventId: string = created.body.id;
      const seatedLabels = ['A1', 'A2', 'A3', 'A4', 'A5', 'B1', 'B2', 'B3', 'B4', 'B5'];
      // The creation answer's seat map is the seated seats only.
      expect(created.body.seats.map((s: { label: string }) => s.label)).toEqual(seatedLabels);

      const event = await api.get(`/events/${eventId}`);
      expect(event.status).toBe(200);
      expect(event.body.sections).toEqual([
        {
          name: 'Stalls',
          kind: 'seated',
          capacity: 10,
          available: 10,
          priceCents: 5000,
          rows: 2,
          seatsPerRow: 5,
        },
        { name: GA, kind: 'ga', capacity: 10, available: 10, priceCents: 2000 },
      ]);
      expect(event.body.seatCounts).toEqual({ total: 20, free: 20, held: 0, booked: 0 });

      const seats = await api.get(`/events/${eventId}/seats`);
      expect(seats.status).toBe(200);
      expect(seats.body).toHaveLength(10);
      expect(seats.body.map((s: { label: string }) => s.label)).toEqual(seatedLabels);
      expect(seats.body.every((s: { section: string }) => s.section === 'Stalls')).toBe(true);
      expect(seats.body[0]).toEqual({
        label: 'A1',
        section: 'Stalls',
        priceCents: 5000,
        currency: 'EUR',
        status: 'free',
      });

      const [alice, bob, carol] = await registerCustomers(api, 3);
      const first = await mustHoldUnits(api, alice, eventId, 3);
      const second = await mustHoldUnits(api, bob, eventId, 4);
      expect(first.amountCents).toBe(6000);
      expect(second.amountCents).toBe(8000);
      const units = [...first.seats, ...second.seats];
      expect(new Set(units).size).toBe(7);
      expect(units.filter((label) => seatedLabels.includes(label))).toEqual([]);
      // A seated hold beside them is untouched by GA.
      const seated = await api.post(
        '/bookings',
        { eventId, seatIds: ['A1', 'A2'] },
        { token: carol.token },
      );
      expect(seated.status).toBe(201);

      const after = await api.get(`/events/${eventId}`);
      expect(
        after.body.sections.map((s: { name: string; available: number }) => [s.name, s.available]),
      ).toEqual([
        ['Stalls', 8],
        [GA, 3],
      ]);
      expect(after.body.seatCounts).toEqual({ total: 20, free: 11, held: 9, booked: 0 });
      // Still only the seated seats, two of them now held.
      const seatsAfter = await api.get(`/events/${eventId}/seats`);
      expect(seatsAfter.body).toHaveLength(10);
      expect(seatsAfter.body.filter((s: { status: string }) => s.status === 'held')).toHaveLength(
        2,
      );
      // 4 more than the 3 left: 409 SOLD_OUT {available: 3}.
      expectSoldOut(await holdUnits(api, carol, eventId, GA, 4), 3);
      const last = await mustHoldUnits(api, carol, eventId, 3);
      expect(new Set([...units, ...last.seats]).size).toBe(10);
      expect(await availableOf(api, eventId)).toBe(0);
      // Also by the database: ten different unit rows, none of them a seated seat.
      const rows = await db.query<{ label: string }[]>(
        `SELECT label FROM seats WHERE event_id = $1 AND section = $2 AND status = 'held'`,
        [eventId, GA],
      );
      expect(rows.map((r) => r.label).sort()).toEqual([...units, ...last.seats].sort());
    });

    it('concurrency: 300 customers asking for 1–4 units of 100 at once never oversell, and every loser is SOLD_OUT', async () => {
      const capacity = 100;
      const eventId = await createEvent(api, [{ name: GA, capacity, priceCents: 1500 }]);
      const customers = await registerCustomers(api, 300);
      const seed = 20_270_601;
      const quantities = quantitiesFrom(seed, customers.length);

      const started = performance.now();
      const responses = await Promise.all(
        customers.map((who, i) => holdUnits(api, who, eventId, GA, quantities[i])),
      );
      const ms = Math.round(performance.now() - started);
      const outcome = await checkWave(api, eventId, capacity, quantities, responses);

      console.log(
        `GA concurrency (seed ${seed}): ${customers.length} requests for ` +
          `${quantities.reduce((a, b) => a + b, 0)} units of ${capacity} in ${ms} ms: ` +
          `${outcome.won} × 201 holding ${outcome.held}, ${outcome.refused.length} × 409 SOLD_OUT, ` +
          `${outcome.free} left, statuses ${JSON.stringify(countStatuses(responses.map((r) => r.status)))}`,
      );
      // Sold to the last unit, or what is left is too few for every refused request.
      expect(outcome.refusedThatFit).toEqual([]);
      expect(outcome.selfContradicting).toEqual([]);

      // And what is left can be held, not one unit more.
      const more = await topUp(
        api,
        eventId,
        outcome.losers.map((i) => customers[i]),
      );
      expect(more).toBe(outcome.free);
      expect(await availableOf(api, eventId)).toBe(0);
    });

    it('the per-customer cap on GA (cap 5): 20 concurrent quantity-1 holds by one customer → exactly 5', async () => {
      const capacity = 50;
      const eventId = await createEvent(capped, [
        { name: 'Stalls', rows: 1, seatsPerRow: 5, priceCents: 5000 },
        { name: GA, capacity, priceCents: 1000 },
      ]);
      const [alice, bob] = await registerCustomers(capped, 2);

      const responses = await Promise.all(
        Array.from({ length: 20 }, () => holdUnits(capped, alice, eventId, GA, 1)),
      );
      expectNoServerErrors(responses);
      expect(countStatuses(responses.map((r) => r.status))).toEqual({ 201: 5, 409: 15 });
      for (const r of responses.filter((r) => r.status === 409)) {
        expectProblem(r, 409, 'BOOKING.CUSTOMER_LIMIT');
        expect({ limit: r.body.limit, current: r.body.current }).toEqual({ limit: 5, current: 5 });
      }
      const units = responses.filter((r) => r.status === 201).flatMap((r) => r.body.seats);
      expect(new Set(units).size).toBe(5);
      const mine = await db.query<{ label: string }[]>(
        `SELECT s.label FROM seats s JOIN bookings b ON b.id = s.booking_id
          WHERE s.event_id = $1 AND b.customer_id = $2 AND s.status = 'held'`,
        [eventId, alice.id],
      );
      expect(mine.map((r) => r.label).sort()).toEqual([...units].sort());
      expect(await availableOf(capped, eventId)).toBe(capacity - 5);
      // The refused claims gave their permits back: Redis counts 45 (unless the count lapsed).
      const counted = await redis.get(permitKey(eventId));
      expect(counted === null || Number(counted) === capacity - 5).toBe(true);

      // The cap spans the event: no seated seat either, and another customer is not limited.
      const seat = await capped.post(
        '/bookings',
        { eventId, seatIds: ['A1'] },
        { token: alice.token },
      );
      expectProblem(seat, 409, 'BOOKING.CUSTOMER_LIMIT');
      expect(seat.body.current).toBe(5);
      await mustHoldUnits(capped, bob, eventId, 5);
      expect(await availableOf(capped, eventId)).toBe(capacity - 10);
    });

    describe('bad input: 400/422 naming the field, nothing written', () => {
      let eventId: string;
      let unitLabel: string;
      let customer: Customer;

      beforeAll(async () => {
        eventId = await createEvent(api, [
          { name: 'Stalls', rows: 1, seatsPerRow: 5, priceCents: 5000 },
          { name: GA, capacity: 10, priceCents: 1000 },
        ]);
        customer = await registerCustomer(api);
        // Unit labels are opaque to clients; a client could still have seen one in a booking.
        const [{ label }] = await db.query<{ label: string }[]>(
          `SELECT label FROM seats WHERE event_id = $1 AND section = $2 ORDER BY position LIMIT 1`,
          [eventId, GA],
        );
        unitLabel = label;
      });

      async function snapshot() {
        const [counts] = await db.query(
          `SELECT (SELECT count(*)::int FROM events) AS events,
                  (SELECT count(*)::int FROM bookings) AS bookings,
                  (SELECT count(*)::int FROM seats) AS seats,
                  (SELECT count(*)::int FROM seats WHERE event_id = $1 AND status <> 'free')
                    AS taken`,
          [eventId],
        );
        return counts as Record<string, number>;
      }

      const hold = (body: Record<string, unknown>) =>
        api.post('/bookings', { eventId, ...body }, { token: customer.token });

      const newEvent = (section: Record<string, unknown>) =>
        api.post(
          '/admin/events',
          {
            name: 'Bad GA',
            startsAt: '2027-06-01T19:30:00Z',
            venue: 'Test Hall',
            currency: 'EUR',
            sections: [{ name: GA, priceCents: 1000, ...section }],
          },
          { token: TEST_ADMIN_TOKEN },
        );

      const cases: {
        name: string;
        send: () => Promise<ApiResponse>;
        status: number;
        /** Every one of these is named; `oneOf`: at least one of these is. */
        fields?: string[];
        oneOf?: string[];
      }[] = [
        {
          name: 'quantity 0',
          send: () => hold({ section: GA, quantity: 0 }),
          status: 400,
          fields: ['quantity'],
        },
        {
          name: 'quantity 11 > MAX_SEATS_PER_BOOKING (10)',
          send: () => hold({ section: GA, quantity: 11 }),
          status: 400,
          fields: ['quantity'],
        },
        {
          name: 'seatIds naming a GA unit',
          send: () => hold({ seatIds: [unitLabel] }),
          status: 422,
          fields: ['seatIds'],
        },
        {
          name: 'seatIds together with section',
          send: () => hold({ seatIds: ['A1'], section: GA }),
          status: 400,
          oneOf: ['section', 'seatIds'],
        },
        {
          name: 'seatIds naming a GA unit together with section',
          send: () => hold({ seatIds: [unitLabel], section: GA }),
          status: 400,
          oneOf: ['section', 'seatIds'],
        },
        {
          name: 'capacity 0',
          send: () => newEvent({ capacity: 0 }),
          status: 400,
          fields: ['sections[0].capacity'],
        },
        {
          name: 'capacity 50,001',
          send: () => newEvent({ capacity: 50_001 }),
          status: 400,
          fields: ['sections[0].capacity'],
        },
        {
          name: 'capacity 1.5',
          send: () => newEvent({ capacity: 1.5 }),
          status: 400,
          fields: ['sections[0].capacity'],
        },
        {
          name: 'capacity together with rows',
          send: () => newEvent({ capacity: 10, rows: 2 }),
          status: 400,
          oneOf: ['sections[0].capacity', 'sections[0].rows'],
        },
        {
          name: 'capacity together with rows and seatsPerRow',
          send: () => newEvent({ capacity: 10, rows: 2, seatsPerRow: 5 }),
          status: 400,
          oneOf: ['sections[0].capacity', 'sections[0].rows', 'sections[0].seatsPerRow'],
        },
      ];

      it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
        const before = await snapshot();
        const response = await c.send();
        expectProblem(response, c.status);
        const fields = fieldsOf(response);
        for (const field of c.fields ?? []) expect(fields).toContain(field);
        if (c.oneOf) expect(fields.filter((f) => c.oneOf?.includes(f))).not.toEqual([]);
        expect(await snapshot()).toEqual(before);
      });

      it('afterwards the whole section is still there for the taking (no permit was kept)', async () => {
        expect(await availableOf(api, eventId)).toBe(10);
        await mustHoldUnits(api, customer, eventId, 10);
        expectSoldOut(await holdUnits(api, customer, eventId, GA, 1), 0);
      });

      it('the capacity bounds themselves are accepted: 1 and 50,000', async () => {
        for (const capacity of [1, 50_000]) {
          const response = await newEvent({ capacity });
          expect(response.status).toBe(201);
          const section = await sectionOf(api, response.body.id);
          expect(section).toMatchObject({ kind: 'ga', capacity, available: capacity });
        }
      });
    });
  });

  describe('Redis faults (a private redis-server): slower, never oversold', () => {
    let redis: RedisServer;
    let api: TestApp;
    let probe: Redis;

    beforeAll(async () => {
      redis = await RedisServer.start();
      api = await TestApp.start({ REDIS_URL: redis.url });
    });

    afterAll(async () => {
      probe?.disconnect();
      await api?.close();
      await redis?.stop();
    });

    it('FLUSHALL in the middle of a concurrent wave: no oversell, and nothing is lost', async () => {
      const capacity = 100;
      const eventId = await createEvent(api, [{ name: GA, capacity, priceCents: 1500 }]);
      const customers = await registerCustomers(api, 300);
      const seed = 4_242;
      const quantities = quantitiesFrom(seed, customers.length);

      let done = 0;
      const flushes: Promise<void>[] = [];
      /** How many answers had come back when each FLUSHALL had finished. */
      const answeredWhenFlushed: number[] = [];
      const responses = await Promise.all(
        customers.map((who, i) =>
          holdUnits(api, who, eventId, GA, quantities[i]).then((response) => {
            done += 1;
            // Twice mid-wave: after a tenth and after half of the answers came back.
            if (done === 30 || done === 150) {
              flushes.push(redis.flushAll().then(() => void answeredWhenFlushed.push(done)));
            }
            return response;
          }),
        ),
      );
      await Promise.all(flushes);
      // Both flushes landed mid-wave: requests were still in flight after each.
      expect(answeredWhenFlushed).toHaveLength(2);
      expect(answeredWhenFlushed.every((n) => n < customers.length)).toBe(true);

      const outcome = await checkWave(api, eventId, capacity, quantities, responses);
      console.log(
        `GA FLUSHALL mid-wave (seed ${seed}; flushed with ${answeredWhenFlushed.join(' and ')} of ` +
          `${customers.length} answered): ${outcome.won} × 201 holding ${outcome.held} of ` +
          `${capacity}, ${outcome.refused.length} × 409, ${outcome.free} left; refused although ` +
          `they fit at the end: ${outcome.refusedThatFit.length}; SOLD_OUT bodies with ` +
          `available ≥ quantity: ${JSON.stringify(outcome.selfContradicting)}`,
      );
      // The counter was re-seeded from PostgreSQL after the flush; it may run high, never low.
      probe = new Redis(redis.url, { maxRetriesPerRequest: 0 });
      const counted = await probe.get(permitKey(eventId));
      console.log(`GA FLUSHALL: the re-seeded count reads ${counted}, ${outcome.free} are free`);
      if (counted !== null) expect(Number(counted)).toBeGreaterThanOrEqual(outcome.free);

      const more = await topUp(
        api,
        eventId,
        outcome.losers.map((i) => customers[i]),
      );
      expect(more).toBe(outcome.free);
      const [{ held }] = await api.app
        .get(DataSource)
        .query(`SELECT count(*)::int AS held FROM seats WHERE event_id = $1 AND status = 'held'`, [
          eventId,
        ]);
      expect(held).toBe(capacity);
    });

    // Filled in by the Redis-down test, used after the restart.
    let downEventId: string;
    let downBookings: { id: string; who: Customer; seats: string[] }[] = [];

    it('Redis stopped: holds still work through PostgreSQL alone, never oversold', async () => {
      const capacity = 50;
      downEventId = await createEvent(api, [{ name: GA, capacity, priceCents: 1500 }]);
      const customers = await registerCustomers(api, 150);
      const seed = 777;
      const quantities = quantitiesFrom(seed, customers.length);
      const fallbacksBefore = await metricOf(api, FALLBACK_UNREACHABLE);

      await redis.kill();
      const started = performance.now();
      const responses = await Promise.all(
        customers.map((who, i) => holdUnits(api, who, downEventId, GA, quantities[i])),
      );
      const ms = Math.round(performance.now() - started);
      const outcome = await checkWave(api, downEventId, capacity, quantities, responses);
      const fallbacks = (await metricOf(api, FALLBACK_UNREACHABLE)) - fallbacksBefore;
      console.log(
        `GA with Redis stopped (seed ${seed}): ${customers.length} requests in ${ms} ms, ` +
          `${outcome.won} × 201 holding ${outcome.held} of ${capacity}, ` +
          `${outcome.refused.length} × 409, ${outcome.free} left, ${fallbacks} PostgreSQL-only ` +
          `holds; refused although they fit at the end: ${outcome.refusedThatFit.length}; ` +
          `SOLD_OUT bodies with available ≥ quantity: ${JSON.stringify(outcome.selfContradicting)}`,
      );
      expect(fallbacks).toBeGreaterThanOrEqual(customers.length);
      expect(outcome.held).toBeGreaterThan(0);

      const losers = outcome.losers.map((i) => customers[i]);
      const more = await topUp(api, downEventId, losers);
      expect(more).toBe(outcome.free);
      expect(await availableOf(api, downEventId)).toBe(0);
      downBookings = responses
        .map((response, i) => ({ response, who: customers[i] }))
        .filter(({ response }) => response.status === 201)
        .map(({ response, who }) => ({ id: response.body.id, who, seats: response.body.seats }));

      const ready = await api.get('/health/ready');
      expect(ready.body.status).toBe('degraded');
    });

    it('Redis still stopped: a request for more than is left never makes a concurrent one that fits fail (20 tries)', async () => {
      // 3 units left; 4 and 3 asked for at once. Only PostgreSQL decides: the 4 cannot be met,
      // the 3 can, whichever statement runs first.
      await redis.kill();
      const tally: Record<string, number> = {};
      const wrong: unknown[] = [];
      for (let i = 0; i < 20; i += 1) {
        const eventId = await createEvent(api, [{ name: GA, capacity: 3, priceCents: 1500 }]);
        const [greedy, fits] = await registerCustomers(api, 2);
        const [four, three] = await Promise.all([
          holdUnits(api, greedy, eventId, GA, 4),
          holdUnits(api, fits, eventId, GA, 3),
        ]);
        expectSoldOut(four);
        const key = `4→${four.status}(available ${four.body.available}) 3→${three.status}`;
        tally[key] = (tally[key] ?? 0) + 1;
        if (three.status !== 201) {
          wrong.push({
            answer: three.body,
            availableAfterwards: await availableOf(api, eventId),
          });
        }
      }
      console.log(
        `GA without Redis, 4 and 3 asked of 3 at once, 20 times: ${JSON.stringify(tally)}` +
          (wrong.length > 0 ? `; first wrong refusal: ${JSON.stringify(wrong[0])}` : ''),
      );
      expect({ wrongRefusals: wrong.length, first: wrong[0] }).toEqual({
        wrongRefusals: 0,
        first: undefined,
      });
    });

    it('Redis restarted empty: the admission count is re-seeded from PostgreSQL and turns buyers away again', async () => {
      expect(downEventId).toBeDefined();
      await redis.restart();
      await eventually(
        'the API to see Redis again',
        async () => (await api.get('/health/ready')).body.status === 'ok',
      );
      probe ??= new Redis(redis.url, { maxRetriesPerRequest: 0 });
      expect(await probe.get(permitKey(downEventId))).toBeNull();
      const [late] = await registerCustomers(api, 1);

      // Sold out while Redis was away: the first buyer's request seeds 0 (it read PostgreSQL, so
      // it is not counted as answered by Redis alone); the next one Redis answers by itself.
      const soldOutBefore = await metricOf(api, SOLD_OUT_REDIS);
      const seededBefore = await metricOf(api, SOLD_OUT_SEEDED);
      expectSoldOut(await holdUnits(api, late, downEventId, GA, 1), 0);
      expect(await probe.get(permitKey(downEventId))).toBe('0');
      const ttl = await probe.pttl(permitKey(downEventId));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(10_000);
      expect((await metricOf(api, SOLD_OUT_SEEDED)) - seededBefore).toBe(1);
      expect((await metricOf(api, SOLD_OUT_REDIS)) - soldOutBefore).toBe(0);
      expectSoldOut(await holdUnits(api, late, downEventId, GA, 2), 0);
      expect((await metricOf(api, SOLD_OUT_REDIS)) - soldOutBefore).toBe(1);

      // A release gives its permits back to the new count; exactly those units sell again.
      const released = downBookings.find((b) => b.seats.length >= 2) ?? downBookings[0];
      const gone = await api.delete(`/bookings/${released.id}`, { token: released.who.token });
      expect(gone.body.status).toBe('released');
      expect(await probe.get(permitKey(downEventId))).toBe(String(released.seats.length));
      const again = await mustHoldUnits(api, late, downEventId, released.seats.length);
      expect([...again.seats].sort()).toEqual([...released.seats].sort());
      expect(await probe.get(permitKey(downEventId))).toBe('0');
      expectSoldOut(await holdUnits(api, late, downEventId, GA, 1), 0);
      expect((await metricOf(api, SOLD_OUT_REDIS)) - soldOutBefore).toBe(2);

      // A new event after the restart: seeded at its first hold, counted down by each hold.
      const fresh = await createEvent(api, [{ name: GA, capacity: 10, priceCents: 1500 }]);
      await mustHoldUnits(api, late, fresh, 3);
      expect(await probe.get(permitKey(fresh))).toBe('7');
      await mustHoldUnits(api, late, fresh, 7);
      expect(await probe.get(permitKey(fresh))).toBe('0');
      expectSoldOut(await holdUnits(api, late, fresh, GA, 1), 0);
    });
  });

  describe('units come back (release, expiry, cancellation), payments, the ledger', () => {
    let stack: PaymentStack;
    /** HOLD_TTL_SECONDS 1, the sweeper every 100 ms. */
    let shortHolds: TestApp;
    let db: DataSource;

    beforeAll(async () => {
      stack = await PaymentStack.start();
      shortHolds = await TestApp.start({ HOLD_TTL_SECONDS: '1', SWEEP_INTERVAL_MS: '100' });
      db = stack.api.app.get(DataSource);
    });

    afterAll(async () => {
      await shortHolds?.close();
      await stack?.close();
    });

    async function unitStatuses(eventId: string, labels: string[]): Promise<string[]> {
      const rows = await db.query<{ status: string }[]>(
        `SELECT status FROM seats WHERE event_id = $1 AND label = ANY($2) ORDER BY label`,
        [eventId, labels],
      );
      expect(rows).toHaveLength(labels.length);
      return rows.map((row) => row.status);
    }

    async function timelineTypes(bookingId: string, who: Customer): Promise<string[]> {
      const response = await stack.api.get(`/bookings/${bookingId}/events`, { token: who.token });
      expect(response.status).toBe(200);
      return response.body.map((entry: { type: string }) => entry.type);
    }

    it('release, a declined card, pay and confirm, cancel and refund: the right count each time, exactly the freed units sell again; the ledger is clean', async () => {
      const api = stack.api;
      const capacity = 6;
      const eventId = await createEvent(api, [
        { name: 'Stalls', rows: 1, seatsPerRow: 4, priceCents: 5000 },
        { name: GA, capacity, priceCents: 2500 },
      ]);
      const [alice, bob, carol, dave, erin] = await registerCustomers(api, 5);
      const ids: string[] = [];

      // Sold out by two holds.
      const a = await mustHoldUnits(api, alice, eventId, 4);
      const b = await mustHoldUnits(api, bob, eventId, 2);
      ids.push(a.id, b.id);
      expect(await availableOf(api, eventId)).toBe(0);
      expectSoldOut(await holdUnits(api, carol, eventId, GA, 1), 0);

      // Released: its 4 units are free at once and exactly they sell again.
      const released = await api.delete(`/bookings/${a.id}`, { token: alice.token });
      expect(released.status).toBe(200);
      expect(released.body.status).toBe('released');
      expect(await unitStatuses(eventId, a.seats)).toEqual(['free', 'free', 'free', 'free']);
      expect(await availableOf(api, eventId)).toBe(4);
      expect(await timelineTypes(a.id, alice)).toEqual(['booking.held', 'booking.released']);
      const c = await mustHoldUnits(api, carol, eventId, 4);
      ids.push(c.id);
      expect([...c.seats].sort()).toEqual([...a.seats].sort());
      expect(await availableOf(api, eventId)).toBe(0);
      expectSoldOut(await holdUnits(api, dave, eventId, GA, 1), 0);

      // A declined card leaves the hold as it was.
      const declined = await stack.pay(bob, b.id, 'pm_card_declined');
      expectProblem(declined, 402, 'PAYMENT.DECLINED');
      expect((await api.get(`/bookings/${b.id}`, { token: bob.token })).body.status).toBe('held');
      expect(await unitStatuses(eventId, b.seats)).toEqual(['held', 'held']);
      expect(await availableOf(api, eventId)).toBe(0);
      expectSoldOut(await holdUnits(api, dave, eventId, GA, 1), 0);

      // Paid and confirmed (fenced): booked, still not available, charged 2 × 2500.
      const paid = await stack.pay(bob, b.id, 'pm_card_visa');
      expect(paid.status).toBe(201);
      expect(paid.body.booking).toMatchObject({ id: b.id, status: 'confirmed', seats: b.seats });
      expect(paid.body.payment).toMatchObject({ status: 'captured', amountCents: 5000 });
      expect(await unitStatuses(eventId, b.seats)).toEqual(['booked', 'booked']);
      expect(await availableOf(api, eventId)).toBe(0);
      expect((await api.get(`/events/${eventId}`)).body.seatCounts).toEqual({
        total: 10,
        free: 4,
        held: 4,
        booked: 2,
      });
      expect(await timelineTypes(b.id, bob)).toEqual([
        'booking.held',
        'payment.declined',
        'booking.confirmed',
      ]);
      expectSoldOut(await holdUnits(api, dave, eventId, GA, 1), 0);

      // Paid, then cancelled: refunded, and exactly its units sell again.
      const paidC = await stack.pay(carol, c.id, 'pm_card_visa');
      expect(paidC.status).toBe(201);
      expect(paidC.body.booking.status).toBe('confirmed');
      expect(await availableOf(api, eventId)).toBe(0);
      const cancelled = await api.delete(`/bookings/${c.id}`, { token: carol.token });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe('cancelled');
      const [refund] = (await api.get(`/bookings/${c.id}/payments`, { token: carol.token })).body;
      expect(refund).toMatchObject({ status: 'refunded', refundedCents: 10_000 });
      expect(await unitStatuses(eventId, c.seats)).toEqual(['free', 'free', 'free', 'free']);
      expect(await availableOf(api, eventId)).toBe(4);
      expect(await timelineTypes(c.id, carol)).toEqual([
        'booking.held',
        'booking.confirmed',
        'booking.cancelled',
        'payment.refunded',
      ]);
      const d = await mustHoldUnits(api, dave, eventId, 4);
      ids.push(d.id);
      expect([...d.seats].sort()).toEqual([...c.seats].sort());
      expectSoldOut(await holdUnits(api, erin, eventId, GA, 1), 0);

      // Dave pays too; Erin gets one unit of a release of Dave's booking after cancelling it.
      expect((await stack.pay(dave, d.id, 'pm_card_visa')).status).toBe(201);
      expect((await api.delete(`/bookings/${d.id}`, { token: dave.token })).body.status).toBe(
        'cancelled',
      );
      const e = await mustHoldUnits(api, erin, eventId, 1);
      ids.push(e.id);
      expect(d.seats).toContain(e.seats[0]);
      expect(await availableOf(api, eventId)).toBe(3);

      // Notifications flow for GA bookings as for seats.
      const notified = await eventually(
        'four notifications for the cancelled GA booking',
        async () => {
          const response = await api.get('/notifications?limit=100', { token: carol.token });
          const mine = (response.body as { type: string; bookingId: string }[]).filter(
            (n) => n.bookingId === c.id,
          );
          return mine.length >= 4 && mine;
        },
      );
      expect(notified.map((n) => n.type).sort()).toEqual(
        ['booking.cancelled', 'booking.confirmed', 'booking.held', 'payment.refunded'].sort(),
      );

      const report = await checkLedger({
        databaseUrl: testDatabaseUrl(),
        gatewayUrl: stack.gateway.url,
        bookingIds: ids,
        retryIntervalMs: 200,
        settleMs: 10_000,
      });
      console.log(
        `GA ledger: ${report.bookings} bookings (${report.confirmedBookings} confirmed), ` +
          `${report.intents} intents (${report.capturedIntents} captured), ` +
          `${report.bookedSeats} booked units, ${report.payments} payments, ` +
          `${report.violations.length} violations`,
      );
      expect(report.violations).toEqual([]);
      expect(report.unknownBookingIds).toEqual([]);
      expect(report.confirmedBookings).toBe(1);
      expect(report.bookedSeats).toBe(2);
    });

    it('expiry (HOLD_TTL_SECONDS 1, sweeper every 100 ms): the count shows the units at once and they sell again, exactly those', async () => {
      const api = shortHolds;
      const capacity = 5;
      const eventId = await createEvent(api, [{ name: GA, capacity, priceCents: 2500 }]);
      const [alice, bob, carol] = await registerCustomers(api, 3);
      const a = await mustHoldUnits(api, alice, eventId, capacity);
      expectSoldOut(await holdUnits(api, bob, eventId, GA, 1), 0);

      await sleep(1200);
      // A lapsed hold counts as free before any path has expired it.
      expect(await availableOf(api, eventId)).toBe(capacity);
      await eventually('the sweeper to expire the GA hold', async () => {
        const booking = await api.get(`/bookings/${a.id}`, { token: alice.token });
        return booking.body.status === 'expired';
      });
      const timeline = await api.get(`/bookings/${a.id}/events`, { token: alice.token });
      expect(timeline.body.map((entry: { type: string }) => entry.type)).toEqual([
        'booking.held',
        'booking.expired',
      ]);
      const rows = await api.app
        .get(DataSource)
        .query(`SELECT status, booking_id FROM seats WHERE event_id = $1 AND label = ANY($2)`, [
          eventId,
          a.seats,
        ]);
      expect(rows).toEqual(a.seats.map(() => ({ status: 'free', booking_id: null })));
      expect(await availableOf(api, eventId)).toBe(capacity);

      // The sweeper gives a swept hold's permits back just after its commit, which the GET above
      // may see first: a buyer is admitted within moments, far sooner than the count's re-seed
      // (10 s) would allow; any refusal before that is SOLD_OUT. Then exactly those units sell.
      const started = performance.now();
      let refusals = 0;
      const again = await eventually(
        'the expired units to be admitted again',
        async () => {
          const response = await holdUnits(api, bob, eventId, GA, capacity);
          if (response.status === 201) return response.body as { id: string; seats: string[] };
          expectSoldOut(response);
          refusals += 1;
          await sleep(50);
          return null;
        },
        2_000,
      );
      console.log(
        `GA expiry: the swept units were admitted again after ` +
          `${Math.round(performance.now() - started)} ms (${refusals} SOLD_OUT before)`,
      );
      expect([...again.seats].sort()).toEqual([...a.seats].sort());
      expectSoldOut(await holdUnits(api, carol, eventId, GA, 1), 0);
    });
  });
});

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { createEvent, type Customer, registerCustomers, type Section } from './support/fixtures';
import { TestApp } from './support/test-app';
import { TEST_ADMIN_TOKEN, testRedisUrl } from './support/test-env';
import { expectNoServerErrors, expectProblem } from './support/problem-assertions';

/**
 * The orphan rule (`orphanPolicy: "strict"`): a hold that would leave a free seat between two
 * unavailable ones (held, booked or the row's end), where that seat had a free neighbour before, is
 * refused with 422 BOOKING.ORPHAN_SEAT and `orphanSeats` — unless the hold takes all but one seat of
 * the run it takes from. Under "off" (the default) such holds are allowed.
 */

const oneRow = (seatsPerRow: number): Section[] => [
  { name: 'Floor', rows: 1, seatsPerRow, priceCents: 1000 },
];

function numberOf(label: string): number {
  return Number(/\d+$/.exec(label)?.[0]);
}

const byNumber = (labels: string[]): string[] =>
  [...labels].sort((a, b) => numberOf(a) - numberOf(b));

describe('orphan rule (real PostgreSQL and Redis)', () => {
  let api: TestApp;
  let db: DataSource;
  let redis: Redis;
  let alice: Customer;
  let bob: Customer;

  beforeAll(async () => {
    api = await TestApp.start();
    db = api.app.get(DataSource);
    redis = new Redis(testRedisUrl());
    [alice, bob] = await registerCustomers(api, 2);
  });

  afterAll(async () => {
    redis?.disconnect();
    await api?.close();
  });

  const hold = (who: Customer, eventId: string, seatIds: string[]) =>
    api.post('/bookings', { eventId, seatIds }, { token: who.token });

  const bestAvailable = (who: Customer, eventId: string, quantity: number) =>
    api.post('/bookings', { eventId, quantity }, { token: who.token });

  async function mustHold(who: Customer, eventId: string, seatIds: string[]): Promise<string> {
    const response = await hold(who, eventId, seatIds);
    if (response.status !== 201) {
      throw new Error(
        `hold ${seatIds.join(',')}: ${response.status} ${JSON.stringify(response.body)}`,
      );
    }
    return response.body.id;
  }

  /** Seats (status, owner, fence), the event's booking count and its Redis lock keys. */
  async function state(eventId: string) {
    const seats = await db.query<{ label: string; status: string; booking_id: string | null }[]>(
      `SELECT label, status, booking_id, fence FROM seats WHERE event_id = $1 ORDER BY position`,
      [eventId],
    );
    const [{ count }] = await db.query(
      `SELECT count(*)::int AS count FROM bookings WHERE event_id = $1`,
      [eventId],
    );
    const prefix = `lock:seat:{event:${eventId}}:`;
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return {
      seats,
      bookings: count as number,
      locks: byNumber(keys.map((k) => k.slice(prefix.length))),
    };
  }

  async function takenLabels(eventId: string): Promise<string[]> {
    return (await state(eventId)).seats.filter((s) => s.status !== 'free').map((s) => s.label);
  }

  /** Expects 422 ORPHAN_SEAT naming exactly `orphans`, and that nothing changed. */
  async function expectRefused(
    who: Customer,
    eventId: string,
    seatIds: string[],
    orphans: string[],
  ): Promise<void> {
    const before = await state(eventId);
    const response = await hold(who, eventId, seatIds);
    expectProblem(response, 422, 'BOOKING.ORPHAN_SEAT');
    expect(byNumber(response.body.orphanSeats ?? [])).toEqual(orphans);
    expect(await state(eventId)).toEqual(before);
  }

  it('GET /events/{id} shows orphanPolicy: "off" by default, as created otherwise', async () => {
    const byDefault = await createEvent(api, oneRow(4));
    const off = await createEvent(api, oneRow(4), { orphanPolicy: 'off' });
    const strict = await createEvent(api, oneRow(4), { orphanPolicy: 'strict' });
    for (const [eventId, policy] of [
      [byDefault, 'off'],
      [off, 'off'],
      [strict, 'strict'],
    ]) {
      const read = await api.get(`/events/${eventId}`);
      expect(read.status).toBe(200);
      expect(read.body.orphanPolicy).toBe(policy);
    }
  });

  it('strict: holding A2 alone strands A1 → 422 orphanSeats [A1], nothing changed; A1 and A2 together is fine', async () => {
    const eventId = await createEvent(api, oneRow(10), { orphanPolicy: 'strict' });

    await expectRefused(alice, eventId, ['A2'], ['A1']);
    const refused = await hold(alice, eventId, ['A2']);
    expect(refused.body.detail).toContain('A1');
    expect(await takenLabels(eventId)).toEqual([]);

    await mustHold(alice, eventId, ['A1', 'A2']);
    expect(await takenLabels(eventId)).toEqual(['A1', 'A2']);
  });

  it('strict: a hold that strands seats on both sides names both; in the middle of a row too', async () => {
    const eventId = await createEvent(api, oneRow(10), { orphanPolicy: 'strict' });

    await expectRefused(alice, eventId, ['A2', 'A4'], ['A1', 'A3']);
    // A4–A5 leaves A1–A3 and A6–A10: nothing stranded.
    await mustHold(alice, eventId, ['A4', 'A5']);
    // A7 would leave A6 between A5 (held) and A7; A6–A10 is a run of 5, not 2.
    await expectRefused(bob, eventId, ['A7'], ['A6']);
    // A3 would leave A1–A2 (two free together): allowed.
    await mustHold(bob, eventId, ['A3']);
    expect(await takenLabels(eventId)).toEqual(['A3', 'A4', 'A5']);
  });

  it('strict: an unavoidable orphan is allowed (the hold takes all but one seat of its run)', async () => {
    // A row of 3 free seats: taking 2 must leave 1.
    const three = await createEvent(api, oneRow(3), { orphanPolicy: 'strict' });
    await mustHold(alice, three, ['A2', 'A3']);
    expect(await takenLabels(three)).toEqual(['A2', 'A3']);

    // The same inside a longer row: after A4–A5, the run A1–A3 is taken from by 2 (leaves A3)…
    const ten = await createEvent(api, oneRow(10), { orphanPolicy: 'strict' });
    await mustHold(alice, ten, ['A4', 'A5']);
    await mustHold(bob, ten, ['A1', 'A2']);
    // …and the run A6–A10 by 4 (leaves A10).
    await mustHold(bob, ten, ['A6', 'A7', 'A8', 'A9']);
    expect(await takenLabels(ten)).toEqual(['A1', 'A2', 'A4', 'A5', 'A6', 'A7', 'A8', 'A9']);

    // A run of 2: A1 alone leaves A2 between A1 and A3 (held), allowed.
    const two = await createEvent(api, oneRow(10), { orphanPolicy: 'strict' });
    await mustHold(alice, two, ['A3', 'A4']);
    await mustHold(bob, two, ['A1']);
    expect(await takenLabels(two)).toEqual(['A1', 'A3', 'A4']);
  });

  it('policy off (default and explicit): stranding holds are allowed', async () => {
    for (const options of [{}, { orphanPolicy: 'off' }]) {
      const eventId = await createEvent(api, oneRow(10), options);
      await mustHold(alice, eventId, ['A2']);
      await mustHold(alice, eventId, ['A4', 'A6']);
      await mustHold(bob, eventId, ['A9']);
      expect(await takenLabels(eventId)).toEqual(['A2', 'A4', 'A6', 'A9']);
    }
  });

  it('strict: best available skips the centre block when it would strand a seat and another block does not', async () => {
    // A1 and A8–A10 taken: free A2–A7. A5–A6 (centre 5.5) would strand A7; A4–A5 strands nothing.
    const eventId = await createEvent(api, oneRow(10), { orphanPolicy: 'strict' });
    await mustHold(alice, eventId, ['A1']);
    await mustHold(alice, eventId, ['A8', 'A9', 'A10']);

    const first = await bestAvailable(bob, eventId, 2);
    expect(first.status).toBe(201);
    expect(byNumber(first.body.seats)).toEqual(['A4', 'A5']);
    // Left: A2–A3 and A6–A7, each taken whole; A6–A7 is nearer the centre.
    const second = await bestAvailable(bob, eventId, 2);
    expect(second.status).toBe(201);
    expect(byNumber(second.body.seats)).toEqual(['A6', 'A7']);
    // Left: A2–A3; one seat must strand the other (allowed, unavoidable): A3 is nearer the centre.
    const third = await bestAvailable(bob, eventId, 1);
    expect(third.status).toBe(201);
    expect(third.body.seats).toEqual(['A3']);
    expect(await takenLabels(eventId)).toEqual([
      'A1',
      'A3',
      'A4',
      'A5',
      'A6',
      'A7',
      'A8',
      'A9',
      'A10',
    ]);
  });

  it('strict: best available on a row of 3 takes 2 and leaves 1 (unavoidable)', async () => {
    const eventId = await createEvent(api, oneRow(3), { orphanPolicy: 'strict' });
    const response = await bestAvailable(alice, eventId, 2);
    expect(response.status).toBe(201);
    // A1–A2 and A2–A3 tie on every key but the first seat.
    expect(byNumber(response.body.seats)).toEqual(['A1', 'A2']);
  });

  it('strict: best available never strands a seat while a non-stranding block exists (a 2×10 filled pair by pair)', async () => {
    const eventId = await createEvent(
      api,
      [{ name: 'Floor', rows: 2, seatsPerRow: 10, priceCents: 1000 }],
      { orphanPolicy: 'strict' },
    );
    // A1 and B10 taken first: each row has a run of 9, so one seat per row must end up alone.
    await mustHold(alice, eventId, ['A1']);
    await mustHold(alice, eventId, ['B10']);
    // Ranked by the published key; A3–A4 and B7–B8 strand a seat (allowed: all but one of a run
    // of 3), and come only once no non-stranding block is left.
    const expected: [seats: string[], strandedAfter: string[]][] = [
      [['A5', 'A6'], []],
      [['A7', 'A8'], []],
      [['A9', 'A10'], []],
      [['B5', 'B6'], []],
      [['B3', 'B4'], []],
      [['B1', 'B2'], []],
      [['A3', 'A4'], ['A2']],
      [
        ['B7', 'B8'],
        ['A2', 'B9'],
      ],
    ];
    for (const [step, [seats, strandedAfter]] of expected.entries()) {
      const response = await bestAvailable(bob, eventId, 2);
      const free = new Set(
        (await state(eventId)).seats.filter((s) => s.status === 'free').map((s) => s.label),
      );
      const stranded = [...free].filter((label) => {
        const row = label[0];
        const n = numberOf(label);
        return !free.has(`${row}${n - 1}`) && !free.has(`${row}${n + 1}`);
      });
      expect({ step, status: response.status, seats: byNumber(response.body.seats ?? []) }).toEqual(
        {
          step,
          status: 201,
          seats,
        },
      );
      expect({ step, stranded: stranded.sort() }).toEqual({ step, stranded: strandedAfter });
    }
    // A2 and B9 are left, apart.
    expectProblem(await bestAvailable(bob, eventId, 2), 409, 'BOOKING.NOT_ENOUGH_TOGETHER');
  });

  it('strict, two holds each fine alone that together strand A6: the second is refused, one after the other and at once', async () => {
    // One after the other, the second is refused (whichever it is): A6 would be left alone, and
    // neither takes all but one of its run (A6–A10 has 5 seats, A1–A6 has 6).
    for (const [first, second] of [
      [
        ['A4', 'A5'],
        ['A7', 'A8'],
      ],
      [
        ['A7', 'A8'],
        ['A4', 'A5'],
      ],
    ]) {
      const eventId = await createEvent(api, oneRow(10), { orphanPolicy: 'strict' });
      await mustHold(alice, eventId, first);
      await expectRefused(bob, eventId, second, ['A6']);
    }

    // At the same time: the hold locks the seats up to two away in its row under the strict
    // policy (docs/on-sale.md), so the two queue and exactly one is refused, naming A6.
    const rounds = 20;
    const outcomes: Record<string, number> = {};
    for (let round = 0; round < rounds; round += 1) {
      const eventId = await createEvent(api, oneRow(10), { orphanPolicy: 'strict' });
      const [x, y] = await Promise.all([
        hold(alice, eventId, ['A4', 'A5']),
        hold(bob, eventId, ['A7', 'A8']),
      ]);
      expectNoServerErrors([x, y]);
      const outcome = [x.status, y.status].sort().join('/');
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      for (const r of [x, y].filter((r) => r.status === 422)) {
        expect(r.body).toMatchObject({ code: 'BOOKING.ORPHAN_SEAT', orphanSeats: ['A6'] });
      }
      const taken = await takenLabels(eventId);
      const expected = [x, y].filter((r) => r.status === 201).flatMap((r) => r.body.seats);
      expect(taken).toEqual(byNumber(expected));
    }
    expect(outcomes).toEqual({ '201/422': rounds });
  });

  it.each([
    ['maybe', 'maybe'],
    ['STRICT (labels are exact)', 'STRICT'],
    ['a number', 1],
    ['a boolean', true],
  ])(
    'bad input: orphanPolicy %s → 400 naming orphanPolicy, no event created',
    async (_n, value) => {
      const name = `Orphan bad input ${randomUUID()}`;
      const response = await api.post(
        '/admin/events',
        {
          name,
          startsAt: '2027-06-01T19:30:00Z',
          venue: 'Test Hall',
          currency: 'EUR',
          sections: oneRow(10),
          orphanPolicy: value,
        },
        { token: TEST_ADMIN_TOKEN },
      );
      expectProblem(response, 400, 'REQUEST.VALIDATION_FAILED');
      const fields = (response.body.errors as { field: string; messages: string[] }[]).map(
        (e) => e.field,
      );
      expect(fields).toContain('orphanPolicy');
      expect(response.body.detail).toContain('orphanPolicy');
      const [{ count }] = await db.query(
        `SELECT count(*)::int AS count FROM events WHERE name = $1`,
        [name],
      );
      expect(count).toBe(0);
    },
  );
});

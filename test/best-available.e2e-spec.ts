import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import {
  countStatuses,
  createEvent,
  type Customer,
  registerCustomer,
  registerCustomers,
  type Section,
} from './support/fixtures';
import type { ApiResponse } from './support/test-app';
import { TestApp } from './support/test-app';
import { testRedisUrl } from './support/test-env';
import { expectNoServerErrors, expectProblem } from './support/problem-assertions';

/**
 * Best available: `POST /bookings {eventId, quantity, section?, together?}` picks the seats. The
 * expected seats are computed here from the published ranking, smallest key first:
 * (block strands a seat ? 1 : 0, section order, row order, |block centre − row centre|, first seat).
 */

type Policy = 'off' | 'strict';

interface Row {
  letter: string;
  section: string;
  seats: number;
}

/** Rows lettered across the event in section order: A, B, …, Z, AA, AB, … */
function rowLetter(index: number): string {
  let n = index + 1;
  let letters = '';
  while (n > 0) {
    const rest = (n - 1) % 26;
    letters = String.fromCharCode(65 + rest) + letters;
    n = Math.floor((n - 1) / 26);
  }
  return letters;
}

function layoutOf(sections: Section[]): Row[] {
  const rows: Row[] = [];
  for (const section of sections) {
    for (let r = 0; r < section.rows; r += 1) {
      rows.push({
        letter: rowLetter(rows.length),
        section: section.name,
        seats: section.seatsPerRow,
      });
    }
  }
  return rows;
}

function parseLabel(label: string): { row: string; number: number } {
  const match = /^([A-Z]+)(\d+)$/.exec(label);
  if (!match) throw new Error(`not a seat label: ${label}`);
  return { row: match[1], number: Number(match[2]) };
}

/** Labels in seat-map order (row, then number). */
function sortLabels(labels: string[]): string[] {
  return [...labels].sort((a, b) => {
    const x = parseLabel(a);
    const y = parseLabel(b);
    if (x.row !== y.row) {
      return x.row.length - y.row.length || (x.row < y.row ? -1 : 1);
    }
    return x.number - y.number;
  });
}

/**
 * The seat map as the tests expect it: which seats are free. `best()` applies the ranking rule,
 * `take()` records a hold.
 */
class Model {
  private readonly free = new Set<string>();

  constructor(
    readonly rows: Row[],
    readonly policy: Policy,
  ) {
    for (const row of rows)
      for (let n = 1; n <= row.seats; n += 1) this.free.add(`${row.letter}${n}`);
  }

  isFree(row: Row, n: number): boolean {
    return n >= 1 && n <= row.seats && this.free.has(`${row.letter}${n}`);
  }

  freeCount(section?: string): number {
    return this.rows
      .filter((row) => section === undefined || row.section === section)
      .reduce((sum, row) => {
        let count = 0;
        for (let n = 1; n <= row.seats; n += 1) if (this.isFree(row, n)) count += 1;
        return sum + count;
      }, 0);
  }

  take(labels: string[]): void {
    for (const label of labels) {
      if (!this.free.delete(label)) throw new Error(`model: ${label} is not free`);
    }
  }

  /**
   * The best block of `quantity` adjacent free seats, or null. A block strands a seat when it
   * leaves a free seat right next to it whose other neighbour is unavailable (or the row's end).
   * Under strict, a stranding block is allowed only when it takes all but one of its run.
   */
  best(quantity: number, section?: string): string[] | null {
    let bestKey: number[] | null = null;
    let bestBlock: string[] | null = null;
    this.rows.forEach((row, rowIndex) => {
      if (section !== undefined && row.section !== section) return;
      const centre = (row.seats + 1) / 2;
      for (let first = 1; first + quantity - 1 <= row.seats; first += 1) {
        const last = first + quantity - 1;
        let allFree = true;
        for (let n = first; n <= last; n += 1) if (!this.isFree(row, n)) allFree = false;
        if (!allFree) continue;
        const strandsLeft = this.isFree(row, first - 1) && !this.isFree(row, first - 2);
        const strandsRight = this.isFree(row, last + 1) && !this.isFree(row, last + 2);
        const strands = strandsLeft || strandsRight;
        if (
          strands &&
          this.policy === 'strict' &&
          this.runLength(row, first, last) !== quantity + 1
        ) {
          // A block the orphan rule refuses; the scenarios below never need one.
          continue;
        }
        // Rows are in section order, so the row index orders sections too.
        const key = [strands ? 1 : 0, rowIndex, Math.abs((first + last) / 2 - centre), first];
        if (bestKey === null || compareKeys(key, bestKey) < 0) {
          bestKey = key;
          bestBlock = [];
          for (let n = first; n <= last; n += 1) bestBlock.push(`${row.letter}${n}`);
        }
      }
    });
    return bestBlock;
  }

  /** What a failed best-available request must answer. */
  expectedFailure(quantity: number, section?: string): string {
    return this.freeCount(section) < quantity ? 'BOOKING.SOLD_OUT' : 'BOOKING.NOT_ENOUGH_TOGETHER';
  }

  private runLength(row: Row, first: number, last: number): number {
    let a = first;
    let b = last;
    while (this.isFree(row, a - 1)) a -= 1;
    while (this.isFree(row, b + 1)) b += 1;
    return b - a + 1;
  }
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Two labels of one row, numbers one apart (given in any order). */
function adjacentPair(labels: string[]): boolean {
  if (labels.length !== 2) return false;
  const [x, y] = labels.map(parseLabel);
  return x.row === y.row && Math.abs(x.number - y.number) === 1;
}

function fieldsOf(response: ApiResponse): string[] {
  const errors = (response.body as { errors?: { field: string; messages: string[] }[] }).errors;
  expect(Array.isArray(errors)).toBe(true);
  return (errors ?? []).map((e) => e.field);
}

describe('best available (real PostgreSQL and Redis)', () => {
  let api: TestApp;
  let db: DataSource;
  let redis: Redis;

  beforeAll(async () => {
    api = await TestApp.start();
    db = api.app.get(DataSource);
    redis = new Redis(testRedisUrl());
  });

  afterAll(async () => {
    redis?.disconnect();
    await api?.close();
  });

  const grid3x10: Section[] = [{ name: 'Stalls', rows: 3, seatsPerRow: 10, priceCents: 5000 }];

  const best = (
    customer: Customer,
    eventId: string,
    quantity: unknown,
    extra: Record<string, unknown> = {},
  ): Promise<ApiResponse> =>
    api.post('/bookings', { eventId, quantity, ...extra }, { token: customer.token });

  async function seatRows(eventId: string) {
    return db.query<{ label: string; status: string; booking_id: string | null; fence: string }[]>(
      `SELECT label, status, booking_id, fence FROM seats WHERE event_id = $1 ORDER BY position`,
      [eventId],
    );
  }

  async function bookingCount(eventId: string): Promise<number> {
    const [{ count }] = await db.query(
      `SELECT count(*)::int AS count FROM bookings WHERE event_id = $1`,
      [eventId],
    );
    return count;
  }

  /** Seat labels with a lock key in Redis for this event. */
  async function lockedLabels(eventId: string): Promise<string[]> {
    const prefix = `lock:seat:{event:${eventId}}:`;
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return sortLabels(keys.map((key) => key.slice(prefix.length)));
  }

  /** Everything a failed request must leave as it was. */
  async function state(eventId: string) {
    return {
      seats: await seatRows(eventId),
      bookings: await bookingCount(eventId),
      locks: await lockedLabels(eventId),
    };
  }

  it('quantity 4 on a fresh 3×10 section: A4–A7 (centre 5.5), next to each other, shaped like a manual hold', async () => {
    const eventId = await createEvent(api, grid3x10);
    const alice = await registerCustomer(api);

    const response = await best(alice, eventId, 4);

    expect(response.status).toBe(201);
    expect(sortLabels(response.body.seats)).toEqual(['A4', 'A5', 'A6', 'A7']);
    expect(response.body).toEqual({
      id: expect.any(String),
      status: 'held',
      eventId,
      seats: expect.any(Array),
      amountCents: 20000,
      currency: 'EUR',
      expiresAt: expect.any(String),
      fencingToken: expect.stringMatching(/^\d+$/),
      createdAt: expect.any(String),
      nextToEachOther: true,
    });
    const held = (await seatRows(eventId)).filter((s) => s.status !== 'free');
    expect(held.map((s) => [s.label, s.status, s.booking_id])).toEqual(
      ['A4', 'A5', 'A6', 'A7'].map((label) => [label, 'held', response.body.id]),
    );
    expect(await lockedLabels(eventId)).toEqual(['A4', 'A5', 'A6', 'A7']);
    const read = await api.get(`/bookings/${response.body.id}`, { token: alice.token });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: response.body.id, status: 'held' });
    const timeline = await api.get(`/bookings/${response.body.id}/events`, { token: alice.token });
    expect(timeline.body.map((e: { type: string }) => e.type)).toEqual(['booking.held']);
  });

  const sequences: [name: string, quantities: number[]][] = [
    ['quantity 2, sixteen times', Array.from({ length: 16 }, () => 2)],
    ['4, 4, 4, 4, then 2 ×7, then 1 ×7', [4, 4, 4, 4, ...Array(7).fill(2), ...Array(7).fill(1)]],
    ['4, 3, 2, 1 repeated, then 2', [4, 3, 2, 1, 4, 3, 2, 1, 4, 3, 2, 1, 2]],
  ];

  for (const policy of ['off', 'strict'] as const) {
    it.each(sequences)(
      `orphanPolicy ${policy}: repeated calls fill outward as the ranking says (%s)`,
      async (_name, quantities) => {
        const eventId = await createEvent(api, grid3x10, { orphanPolicy: policy });
        const model = new Model(layoutOf(grid3x10), policy);
        const customers = await registerCustomers(api, quantities.length);
        const trace: string[] = [];

        for (const [i, quantity] of quantities.entries()) {
          const expected = model.best(quantity);
          const response = await best(customers[i], eventId, quantity);
          trace.push(
            `${quantity} → ${response.status} ${
              response.status === 201
                ? sortLabels(response.body.seats).join(',')
                : response.body.code
            }`,
          );
          if (expected) {
            expect({ step: i, trace, seats: sortLabels(response.body.seats ?? []) }).toEqual({
              step: i,
              trace,
              seats: expected,
            });
            expect(response.status).toBe(201);
            expect(response.body.nextToEachOther).toBe(true);
            model.take(expected);
          } else {
            const code = model.expectedFailure(quantity);
            expect({ step: i, trace, code: response.body.code }).toEqual({ step: i, trace, code });
            expectProblem(response, 409, code);
          }
        }

        // The seat map ends exactly as the model says, with nothing else held.
        const taken = (await seatRows(eventId)).filter((s) => s.status !== 'free');
        const expectedTaken = model.rows.flatMap((row) =>
          Array.from({ length: row.seats }, (_, n) => n + 1)
            .filter((n) => !model.isFree(row, n))
            .map((n) => `${row.letter}${n}`),
        );
        expect(sortLabels(taken.map((s) => s.label))).toEqual(expectedTaken);
        expect(await lockedLabels(eventId)).toEqual(expectedTaken);
      },
    );
  }

  it('section filter: only the named section is searched; it sells out on its own', async () => {
    const sections: Section[] = [
      { name: 'Stalls', rows: 2, seatsPerRow: 6, priceCents: 5000 },
      { name: 'Balcony', rows: 1, seatsPerRow: 6, priceCents: 2500 },
    ];
    const eventId = await createEvent(api, sections);
    const customers = await registerCustomers(api, 6);

    const balcony = await best(customers[0], eventId, 2, { section: 'Balcony' });
    expect(balcony.status).toBe(201);
    expect(sortLabels(balcony.body.seats)).toEqual(['C3', 'C4']);
    expect(balcony.body.amountCents).toBe(5000);

    const anywhere = await best(customers[1], eventId, 2);
    expect(anywhere.status).toBe(201);
    expect(sortLabels(anywhere.body.seats)).toEqual(['A3', 'A4']);

    const stalls = await best(customers[2], eventId, 2, { section: 'Stalls' });
    expect(stalls.status).toBe(201);
    expect(sortLabels(stalls.body.seats)).toEqual(['A1', 'A2']);

    // Balcony has C1, C2, C5, C6 left: 4 free, no 3 together; 5 is more than it has.
    const together = await best(customers[3], eventId, 3, { section: 'Balcony' });
    expectProblem(together, 409, 'BOOKING.NOT_ENOUGH_TOGETHER');
    const soldOut = await best(customers[4], eventId, 5, { section: 'Balcony' });
    expectProblem(soldOut, 409, 'BOOKING.SOLD_OUT');
    // The same 5 without the filter: Stalls still has B1–B6.
    const unfiltered = await best(customers[5], eventId, 5);
    // Every block of 5 in row B strands its sixth seat: B1–B5 and B2–B6 tie, the first wins.
    expect(unfiltered.status).toBe(201);
    expect(sortLabels(unfiltered.body.seats)).toEqual(['B1', 'B2', 'B3', 'B4', 'B5']);
  });

  it('SOLD_OUT and NOT_ENOUGH_TOGETHER leave nothing behind; together:false then answers with split seats', async () => {
    // One row of 5: Alice holds A2 and A4, so A1, A3, A5 are free and none are adjacent.
    const eventId = await createEvent(api, [
      { name: 'Floor', rows: 1, seatsPerRow: 5, priceCents: 1000 },
    ]);
    const [alice, bob, carol] = await registerCustomers(api, 3);
    const manual = await api.post(
      '/bookings',
      { eventId, seatIds: ['A2', 'A4'] },
      { token: alice.token },
    );
    expect(manual.status).toBe(201);

    const before = await state(eventId);
    const apart = await best(bob, eventId, 2);
    expectProblem(apart, 409, 'BOOKING.NOT_ENOUGH_TOGETHER');
    const explicit = await best(bob, eventId, 2, { together: true });
    expectProblem(explicit, 409, 'BOOKING.NOT_ENOUGH_TOGETHER');
    const tooMany = await best(bob, eventId, 4, { together: false });
    expectProblem(tooMany, 409, 'BOOKING.SOLD_OUT');
    const tooManyTogether = await best(bob, eventId, 4);
    expectProblem(tooManyTogether, 409, 'BOOKING.SOLD_OUT');
    expect(await state(eventId)).toEqual(before);

    // Best single seats by the same key: A3 (the centre), then A1 (nearer the front than A5).
    const split = await best(bob, eventId, 2, { together: false });
    expect(split.status).toBe(201);
    expect(sortLabels(split.body.seats)).toEqual(['A1', 'A3']);
    expect(split.body).toMatchObject({ status: 'held', nextToEachOther: false, amountCents: 2000 });

    const last = await best(carol, eventId, 1, { together: false });
    expect(last.status).toBe(201);
    expect(last.body.seats).toEqual(['A5']);
    const afterLast = await state(eventId);
    const none = await best(carol, eventId, 1);
    expectProblem(none, 409, 'BOOKING.SOLD_OUT');
    expect(await state(eventId)).toEqual(afterLast);
    expect(afterLast.bookings).toBe(3);
    expect(afterLast.seats.every((s) => s.status === 'held')).toBe(true);
  });

  it('together:false takes single seats across rows when no block is left, never a partial hold', async () => {
    // 2×3: A2 and B2 held, so A1, A3, B1, B3 free, no two adjacent.
    const eventId = await createEvent(api, [
      { name: 'Floor', rows: 2, seatsPerRow: 3, priceCents: 1000 },
    ]);
    const [alice, bob] = await registerCustomers(api, 2);
    expect(
      (await api.post('/bookings', { eventId, seatIds: ['A2', 'B2'] }, { token: alice.token }))
        .status,
    ).toBe(201);

    const before = await state(eventId);
    expectProblem(await best(bob, eventId, 2), 409, 'BOOKING.NOT_ENOUGH_TOGETHER');
    expectProblem(await best(bob, eventId, 5, { together: false }), 409, 'BOOKING.SOLD_OUT');
    expect(await state(eventId)).toEqual(before);

    const split = await best(bob, eventId, 3, { together: false });
    expect(split.status).toBe(201);
    expect(sortLabels(split.body.seats)).toEqual(['A1', 'A3', 'B1']);
    expect(split.body.nextToEachOther).toBe(false);
    const held = (await seatRows(eventId)).filter((s) => s.booking_id === split.body.id);
    expect(held.map((s) => s.label)).toEqual(['A1', 'A3', 'B1']);
  });

  it('concurrent best-available requests on a small event: never a seat twice, never a partial hold', async () => {
    const eventId = await createEvent(api, grid3x10);
    const customers = await registerCustomers(api, 40);

    const responses = await Promise.all(customers.map((c) => best(c, eventId, 3)));
    expectNoServerErrors(responses);

    const won = responses.filter((r) => r.status === 201);
    for (const r of responses.filter((r) => r.status !== 201)) {
      expect(r.status).toBe(409);
      expect([
        'BOOKING.SOLD_OUT',
        'BOOKING.NOT_ENOUGH_TOGETHER',
        'BOOKING.SEAT_UNAVAILABLE',
      ]).toContain(r.body.code);
    }
    const seats = won.flatMap((r) => r.body.seats as string[]);
    expect(new Set(seats).size).toBe(seats.length);
    // 10 seats a row fit three blocks of 3: at most 9 winners; each block in one row, consecutive.
    expect(won.length).toBeGreaterThanOrEqual(3);
    expect(won.length).toBeLessThanOrEqual(9);
    for (const r of won) {
      const parsed = sortLabels(r.body.seats).map(parseLabel);
      expect(new Set(parsed.map((p) => p.row)).size).toBe(1);
      expect(parsed[2].number - parsed[0].number).toBe(2);
      expect(r.body.nextToEachOther).toBe(true);
    }
    const rows = await seatRows(eventId);
    const taken = rows.filter((s) => s.status !== 'free');
    expect(sortLabels(taken.map((s) => s.label))).toEqual(sortLabels(seats));
    const owner = new Map(won.flatMap((r) => r.body.seats.map((l: string) => [l, r.body.id])));
    for (const seat of taken) expect(seat.booking_id).toBe(owner.get(seat.label));
    expect(await bookingCount(eventId)).toBe(won.length);
    expect(await lockedLabels(eventId)).toEqual(sortLabels(seats));
  });

  it('stampede: 1,000 customers ask for 2 seats each on a 1,000-seat strict event', async () => {
    const rows = 20;
    const perRow = 50;
    const eventId = await createEvent(
      api,
      [{ name: 'Arena', rows, seatsPerRow: perRow, priceCents: 3000 }],
      { orphanPolicy: 'strict' },
    );
    const customers = await registerCustomers(api, 1000);

    const started = Date.now();
    const responses = await Promise.all(customers.map((c) => best(c, eventId, 2)));
    const wallMs = Date.now() - started;

    const counts = countStatuses(responses.map((r) => r.status));
    const won = responses.filter((r) => r.status === 201);
    const lost = responses.filter((r) => r.status !== 201);
    const lostCodes: Record<string, number> = {};
    for (const r of lost) lostCodes[r.body?.code] = (lostCodes[r.body?.code] ?? 0) + 1;

    // No seat twice, each booking two adjacent seats of one row.
    const seats = won.flatMap((r) => r.body.seats as string[]);
    expect(new Set(seats).size).toBe(seats.length);
    const notAdjacent = won.filter((r) => !adjacentPair(r.body.seats)).map((r) => r.body.seats);
    expect(notAdjacent).toEqual([]);
    expect(won.every((r) => r.body.nextToEachOther === true)).toBe(true);

    // The database agrees: every taken seat belongs to the booking that answered it.
    const seatRowsNow = await seatRows(eventId);
    const taken = seatRowsNow.filter((s) => s.status !== 'free');
    expect(sortLabels(taken.map((s) => s.label))).toEqual(sortLabels(seats));
    const owner = new Map(won.flatMap((r) => r.body.seats.map((l: string) => [l, r.body.id])));
    const misowned = taken.filter((s) => s.booking_id !== owner.get(s.label));
    expect(misowned).toEqual([]);
    expect(await bookingCount(eventId)).toBe(won.length);

    // Free seats with both neighbours unavailable (or the row's end).
    const free = new Set(seatRowsNow.filter((s) => s.status === 'free').map((s) => s.label));
    const stranded = [...free].filter((label) => {
      const { row, number } = parseLabel(label);
      return !free.has(`${row}${number - 1}`) && !free.has(`${row}${number + 1}`);
    });

    console.log(
      `best-available stampede: ${won.length} bookings (201), ${lost.length} refused ` +
        `${JSON.stringify(lostCodes)}, statuses ${JSON.stringify(counts)}, ` +
        `${free.size} seats free, ${stranded.length} stranded ${JSON.stringify(sortLabels(stranded))}, ` +
        `wall time ${wallMs} ms`,
    );

    expectNoServerErrors(responses);
    expect(won.length).toBeGreaterThanOrEqual(490);
    expect(won.length + (counts[409] ?? 0)).toBe(responses.length);
    for (const r of lost) {
      expect(r.headers['content-type']).toContain('application/problem+json');
      expect([
        'BOOKING.SOLD_OUT',
        'BOOKING.NOT_ENOUGH_TOGETHER',
        'BOOKING.SEAT_UNAVAILABLE',
      ]).toContain(r.body.code);
    }
  }, 120_000);

  // ---- bad input: 4xx naming the field, nothing changed ----

  const badInput = async (body: Record<string, unknown>): Promise<ApiResponse> => {
    badInputEvent ??= {
      eventId: await createEvent(api, grid3x10),
      customer: await registerCustomer(api),
    };
    badInputBefore ??= await state(badInputEvent.eventId);
    const { eventId, customer } = badInputEvent;
    return api.post('/bookings', { eventId, ...body }, { token: customer.token });
  };
  let badInputEvent: { eventId: string; customer: Customer } | undefined;
  let badInputBefore: Awaited<ReturnType<typeof state>> | undefined;

  const validation: [name: string, body: Record<string, unknown>, fields: string[]][] = [
    ['quantity 0', { quantity: 0 }, ['quantity']],
    ['quantity 11 (over MAX_SEATS_PER_BOOKING 10)', { quantity: 11 }, ['quantity']],
    ["quantity 'x'", { quantity: 'x' }, ['quantity']],
    ['quantity 1.5', { quantity: 1.5 }, ['quantity']],
    ['quantity -1', { quantity: -1 }, ['quantity']],
    ["together 'yes'", { quantity: 2, together: 'yes' }, ['together']],
    ['section 123', { quantity: 2, section: 123 }, ['section']],
  ];

  it.each(validation)('bad input: 400 %s, naming the field', async (_name, body, fields) => {
    const response = await badInput(body);
    expectProblem(response, 400, 'REQUEST.VALIDATION_FAILED');
    expect(fieldsOf(response)).toEqual(expect.arrayContaining(fields));
    for (const field of fields) expect(response.body.detail).toContain(field);
  });

  it.each([
    ['both seatIds and quantity', { seatIds: ['A1'], quantity: 1 }],
    ['neither seatIds nor quantity', {}],
    ['neither, only together and section', { together: true, section: 'Stalls' }],
  ])('bad input: 400 %s, naming seatIds or quantity', async (_name, body) => {
    const response = await badInput(body);
    expectProblem(response, 400, 'REQUEST.VALIDATION_FAILED');
    const fields = fieldsOf(response);
    expect(fields.some((f) => f === 'seatIds' || f === 'quantity')).toBe(true);
  });

  it('bad input: 422 unknown section, naming section', async () => {
    const response = await badInput({ quantity: 2, section: 'Balcony' });
    expectProblem(response, 422);
    expect(response.body.code).toMatch(/^BOOKING\./);
    const errors = (response.body.errors ?? []) as { field: string }[];
    const named =
      errors.some((e) => e.field === 'section') || String(response.body.detail).includes('section');
    expect({ named, body: response.body }).toMatchObject({ named: true });
  });

  it('bad input changed nothing: no booking, no held seat, no lock', async () => {
    await badInput({ quantity: 0 });
    const { eventId, customer } = badInputEvent!;
    expect(await state(eventId)).toEqual(badInputBefore);
    expect(badInputBefore!.bookings).toBe(0);
    expect(badInputBefore!.seats.every((s) => s.status === 'free')).toBe(true);
    const mine = await api.get('/bookings', { token: customer.token });
    expect(mine.body).toEqual([]);
  });
});

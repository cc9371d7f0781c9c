import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { runCheckLedger } from '../apps/api/src/ledger/check-ledger';
import { checkLedger, type LedgerReport } from '../apps/api/src/ledger/ledger-check';
import { testDatabaseUrl } from './support/test-env';
import { TestGateway } from './support/test-gateway';

const SEAT_LABELS = ['A1', 'A2', 'A3', 'A4', 'A5', 'A6', 'A7', 'A8'];
const PRICE = 2500;

type BookingStatus = 'held' | 'confirmed' | 'released' | 'expired' | 'cancelled';

interface Paid {
  bookingId: string;
  paymentId: string;
  intentId: string;
}

/**
 * The ledger check against a real PostgreSQL and a real gateway simulator: rows are written with SQL
 * (as the API would have left them) and the money moves through the simulator's own HTTP API, so
 * every check reads exactly what production would. Each check is scoped to this test's bookings,
 * because other suites share the database and the gateway's tables.
 */
describe('check:ledger (real PostgreSQL, real gateway simulator)', () => {
  let gateway: TestGateway;
  let db: Client;
  let customerId: string;
  const eventIds: string[] = [];

  beforeAll(async () => {
    // pm_card_async stays `processing` for the whole run.
    gateway = await TestGateway.start({ GATEWAY_ASYNC_DELAY_MS: '3600000' });
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
    customerId = randomUUID();
    await db.query(
      `INSERT INTO customers (id, email, name, token_hash) VALUES ($1, $2, 'Ledger Tester', $3)`,
      [customerId, `ledger-${customerId}@example.test`, randomBytes(32).toString('hex')],
    );
  });

  afterAll(async () => {
    // These rows break the ledger on purpose (a payment `pending` for ever, seats booked twice);
    // suites that run later share the database and wait for every payment to settle.
    await db.query('DELETE FROM payments WHERE customer_id = $1', [customerId]);
    await db.query(
      'DELETE FROM booking_timeline WHERE booking_id IN (SELECT id FROM bookings WHERE customer_id = $1)',
      [customerId],
    );
    await db.query('DELETE FROM bookings WHERE customer_id = $1', [customerId]);
    await db.query('DELETE FROM events WHERE id = ANY($1)', [eventIds]);
    await db.query('DELETE FROM customers WHERE id = $1', [customerId]);
    await db.end();
    await gateway.close();
  });

  function check(bookingIds: string[], extra: { settleMs?: number; pageSize?: number } = {}) {
    return checkLedger({
      databaseUrl: testDatabaseUrl(),
      gatewayUrl: gateway.url,
      bookingIds,
      retryIntervalMs: 200,
      ...extra,
    });
  }

  async function newEvent(): Promise<string> {
    const eventId = randomUUID();
    eventIds.push(eventId);
    await db.query(
      `INSERT INTO events (id, name, venue, starts_at, currency, sections, seat_count)
       VALUES ($1, 'Ledger test', 'Test Hall', now() + interval '30 days', 'EUR', '[]', $2)`,
      [eventId, SEAT_LABELS.length],
    );
    await db.query(
      `INSERT INTO seats (event_id, label, section, position, price_cents, row_name, seat_number)
       SELECT $1, label, 'Floor', position - 1, $3, 'A', position
         FROM unnest($2::text[]) WITH ORDINALITY AS s (label, position)`,
      [eventId, SEAT_LABELS, PRICE],
    );
    return eventId;
  }

  /** A booking row, with its seats as the booking service leaves them for that status. */
  async function insertBooking(
    eventId: string,
    status: BookingStatus,
    labels: string[],
    options: { currency?: string; seats?: 'as-status' | 'untouched' } = {},
  ): Promise<string> {
    const bookingId = randomUUID();
    await db.query(
      `INSERT INTO bookings
         (id, customer_id, event_id, status, seat_labels, amount_cents, currency, expires_at, fence)
       VALUES ($1, $2, $3, $4, $5, $6, $7, now() + interval '10 minutes', 1)`,
      [
        bookingId,
        customerId,
        eventId,
        status,
        labels,
        PRICE * labels.length,
        options.currency ?? 'EUR',
      ],
    );
    if (options.seats !== 'untouched' && (status === 'confirmed' || status === 'held')) {
      await setSeats(eventId, labels, status === 'confirmed' ? 'booked' : 'held', bookingId);
    }
    return bookingId;
  }

  async function setSeats(
    eventId: string,
    labels: string[],
    status: 'free' | 'held' | 'booked',
    bookingId: string | null,
  ): Promise<void> {
    await db.query(
      `UPDATE seats
          SET status = $3, booking_id = $4,
              held_until = CASE WHEN $3 = 'held' THEN now() + interval '10 minutes' END
        WHERE event_id = $1 AND label = ANY($2)`,
      [eventId, labels, status, bookingId],
    );
  }

  /** Creates an intent (manual capture) with the metadata the API puts on every intent. */
  async function authorize(
    bookingId: string,
    options: {
      paymentId?: string;
      amount?: number;
      currency?: string;
      paymentMethod?: string;
      metadata?: Record<string, string>;
    } = {},
  ): Promise<string> {
    const response = await gateway.post('/v1/payment_intents', {
      amount: options.amount ?? PRICE * 2,
      currency: options.currency ?? 'EUR',
      payment_method: options.paymentMethod ?? 'pm_card_visa',
      capture_method: 'manual',
      metadata: options.metadata ?? {
        bookingId,
        paymentId: options.paymentId ?? randomUUID(),
        customerId,
      },
    });
    if (response.status === 402) return response.body.error.payment_intent.id as string;
    if (response.status !== 200) {
      throw new Error(`authorize: ${response.status} ${JSON.stringify(response.body)}`);
    }
    return response.body.id as string;
  }

  async function gatewayCall(path: string, body?: unknown): Promise<void> {
    const response = await gateway.post(path, body);
    if (response.status !== 200) {
      throw new Error(`${path}: ${response.status} ${JSON.stringify(response.body)}`);
    }
  }

  const capture = (intentId: string) => gatewayCall(`/v1/payment_intents/${intentId}/capture`);
  const voidIntent = (intentId: string) => gatewayCall(`/v1/payment_intents/${intentId}/cancel`);
  const refund = (intentId: string, amount?: number) =>
    gatewayCall('/v1/refunds', { payment_intent: intentId, amount });

  async function insertPayment(
    paymentId: string,
    bookingId: string,
    status: string,
    intentId: string | null,
    options: { nextAction?: string; amountCents?: number; refundedCents?: number } = {},
  ): Promise<void> {
    const amount = options.amountCents ?? PRICE * 2;
    await db.query(
      `INSERT INTO payments
         (id, booking_id, customer_id, status, next_action, amount_cents, refunded_cents, currency,
          payment_method, fence, gateway_idempotency_key, gateway_intent_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'EUR', 'pm_card_visa', 1, $8, $9)`,
      [
        paymentId,
        bookingId,
        customerId,
        status,
        options.nextAction ?? null,
        amount,
        options.refundedCents ?? (status === 'refunded' ? amount : 0),
        `ledger-${paymentId}`,
        intentId,
      ],
    );
  }

  /** The happy path: a confirmed booking of two seats, authorized, captured, recorded. */
  async function paidBooking(eventId: string, labels: string[]): Promise<Paid> {
    const bookingId = await insertBooking(eventId, 'confirmed', labels);
    const paymentId = randomUUID();
    const intentId = await authorize(bookingId, { paymentId, amount: PRICE * labels.length });
    await capture(intentId);
    await insertPayment(paymentId, bookingId, 'captured', intentId, {
      amountCents: PRICE * labels.length,
    });
    return { bookingId, paymentId, intentId };
  }

  /** A hold whose payment came too late: authorized, then voided, booking expired. */
  async function voidedBooking(eventId: string, labels: string[]): Promise<Paid> {
    const bookingId = await insertBooking(eventId, 'expired', labels);
    const paymentId = randomUUID();
    const intentId = await authorize(bookingId, { paymentId });
    await voidIntent(intentId);
    await insertPayment(paymentId, bookingId, 'voided', intentId);
    return { bookingId, paymentId, intentId };
  }

  it('passes a settled ledger: paid, voided, captured too late and refunded, cancelled, declined', async () => {
    const eventId = await newEvent();
    const paid = await paidBooking(eventId, ['A1', 'A2']);
    const voided = await voidedBooking(eventId, ['A3', 'A4']);

    const late = await insertBooking(eventId, 'expired', ['A5', 'A6']);
    const latePayment = randomUUID();
    const lateIntent = await authorize(late, { paymentId: latePayment });
    await capture(lateIntent);
    await refund(lateIntent);
    await insertPayment(latePayment, late, 'refunded', lateIntent);

    // Confirmed, then cancelled by its owner: refunded, seats free again.
    const cancelled = await insertBooking(eventId, 'cancelled', ['A7', 'A8']);
    const cancelledPayment = randomUUID();
    const cancelledIntent = await authorize(cancelled, { paymentId: cancelledPayment });
    await capture(cancelledIntent);
    await refund(cancelledIntent, 1000);
    await refund(cancelledIntent);
    await insertPayment(cancelledPayment, cancelled, 'refunded', cancelledIntent);

    // A declined card leaves the hold in place until its TTL.
    const held = await insertBooking(await newEvent(), 'held', ['A1', 'A2']);
    const declinedPayment = randomUUID();
    const declinedIntent = await authorize(held, {
      paymentId: declinedPayment,
      paymentMethod: 'pm_card_declined',
    });
    await insertPayment(declinedPayment, held, 'failed', declinedIntent);

    const released = await insertBooking(eventId, 'released', ['A3']);

    const report = await check([paid.bookingId, voided.bookingId, late, cancelled, held, released]);
    expect(report).toEqual<LedgerReport>({
      violations: [],
      intents: 5,
      capturedIntents: 1,
      bookings: 6,
      confirmedBookings: 1,
      bookedSeats: 2,
      payments: 5,
      unknownBookingIds: [],
      attempts: 1,
    });
  });

  it('rule 1: reports money kept for a booking that is not confirmed, or that does not exist', async () => {
    const eventId = await newEvent();
    const expired = await insertBooking(eventId, 'expired', ['A1', 'A2']);
    const paymentId = randomUUID();
    const intentId = await authorize(expired, { paymentId });
    await capture(intentId);
    await insertPayment(paymentId, expired, 'captured', intentId);

    // Partly refunded is still money kept.
    const partly = await insertBooking(eventId, 'expired', ['A3', 'A4']);
    const partlyPayment = randomUUID();
    const partlyIntent = await authorize(partly, { paymentId: partlyPayment });
    await capture(partlyIntent);
    await refund(partlyIntent, 1000);
    await insertPayment(partlyPayment, partly, 'refunded', partlyIntent, { refundedCents: 1000 });

    const ghost = randomUUID();
    const ghostIntent = await authorize(ghost);
    await capture(ghostIntent);

    const { violations } = await check([expired, partly, ghost]);
    expect(violations).toEqual([
      `intent ${intentId} of booking ${expired} keeps 5000 EUR cents but the booking is expired, ` +
        'not confirmed; the capture must be refunded in full',
      `intent ${partlyIntent} of booking ${partly} keeps 4000 EUR cents but the booking is ` +
        'expired, not confirmed; the capture must be refunded in full',
      `intent ${ghostIntent} of booking ${ghost} keeps 5000 EUR cents but the booking does not ` +
        'exist; it must be refunded',
      expect.stringContaining(
        `intent ${ghostIntent} of booking ${ghost} is an orphan authorization`,
      ),
    ]);

    await refund(intentId);
    await db.query(`UPDATE payments SET status = 'refunded', refunded_cents = 5000 WHERE id = $1`, [
      paymentId,
    ]);
    expect((await check([expired])).violations).toEqual([]);
  });

  it('rule 1: reports a capture whose amount or currency differs from its confirmed booking', async () => {
    const eventId = await newEvent();
    const short = await insertBooking(eventId, 'confirmed', ['A1', 'A2']);
    const shortPayment = randomUUID();
    const shortIntent = await authorize(short, { paymentId: shortPayment, amount: 4000 });
    await capture(shortIntent);
    await insertPayment(shortPayment, short, 'captured', shortIntent, { amountCents: 4000 });

    const dollars = await insertBooking(eventId, 'confirmed', ['A3', 'A4']);
    const dollarsPayment = randomUUID();
    const dollarsIntent = await authorize(dollars, { paymentId: dollarsPayment, currency: 'usd' });
    await capture(dollarsIntent);
    await insertPayment(dollarsPayment, dollars, 'captured', dollarsIntent);

    expect((await check([short, dollars])).violations).toEqual([
      `intent ${shortIntent} of booking ${short} keeps 4000 EUR cents but the booking costs ` +
        '5000 EUR cents',
      `intent ${dollarsIntent} of booking ${dollars} is in USD but the booking is in EUR`,
      `payment ${dollarsPayment} of booking ${dollars} is for 5000 EUR cents but intent ` +
        `${dollarsIntent} is for 5000 USD cents`,
    ]);
  });

  it('rules 1 and 2: one captured intent per confirmed booking, never two and never none', async () => {
    const eventId = await newEvent();
    const twice = await paidBooking(eventId, ['A1', 'A2']);
    const secondPayment = randomUUID();
    const secondIntent = await authorize(twice.bookingId, { paymentId: secondPayment });
    await capture(secondIntent);
    await insertPayment(secondPayment, twice.bookingId, 'captured', secondIntent);

    // Confirmed, but its authorization was voided (and recorded so): nobody paid for it.
    const unpaid = await insertBooking(eventId, 'confirmed', ['A3', 'A4']);
    const unpaidPayment = randomUUID();
    const unpaidIntent = await authorize(unpaid, { paymentId: unpaidPayment });
    await voidIntent(unpaidIntent);
    await insertPayment(unpaidPayment, unpaid, 'voided', unpaidIntent);

    const free = await insertBooking(eventId, 'confirmed', ['A5', 'A6']);

    expect((await check([twice.bookingId, unpaid, free])).violations).toEqual([
      `booking ${twice.bookingId} is confirmed and was charged 2 times: intents ` +
        `${twice.intentId}, ${secondIntent} are all captured and not refunded`,
      `booking ${unpaid} is confirmed but no captured, unrefunded intent at the gateway pays for it`,
      `booking ${free} is confirmed but no captured, unrefunded intent at the gateway pays for it`,
    ]);

    await refund(secondIntent);
    await db.query(`UPDATE payments SET status = 'refunded', refunded_cents = 5000 WHERE id = $1`, [
      secondPayment,
    ]);
    expect((await check([twice.bookingId])).violations).toEqual([]);
  });

  it('rule 3: reports an authorization still requires_capture or processing', async () => {
    const eventId = await newEvent();
    const expired = await insertBooking(eventId, 'expired', ['A1', 'A2']);
    const paymentId = randomUUID();
    const intentId = await authorize(expired, { paymentId });
    await insertPayment(paymentId, expired, 'authorized', intentId, { nextAction: 'void' });

    const slow = await insertBooking(eventId, 'expired', ['A3', 'A4']);
    const slowPayment = randomUUID();
    const slowIntent = await authorize(slow, {
      paymentId: slowPayment,
      paymentMethod: 'pm_card_async',
    });
    await insertPayment(slowPayment, slow, 'pending', slowIntent, { nextAction: 'authorize' });

    expect((await check([expired, slow])).violations).toEqual([
      `intent ${intentId} of booking ${expired} is authorized but not captured (requires_capture): ` +
        'the authorization was neither captured nor voided',
      `intent ${slowIntent} of booking ${slow} is still processing: the authorization was ` +
        'neither captured nor voided',
    ]);

    await voidIntent(intentId);
    await voidIntent(slowIntent);
    await db.query(
      `UPDATE payments SET status = 'voided', next_action = NULL WHERE id = ANY($1::uuid[])`,
      [[paymentId, slowPayment]],
    );
    expect((await check([expired, slow])).violations).toEqual([]);
  });

  it('rule 4: reports a seat booked twice, booked for a lapsed hold, or not booked for its booking', async () => {
    const eventId = await newEvent();
    const first = await paidBooking(eventId, ['A1', 'A2']);
    // A second confirmed booking of A2 (a stale writer that got through): its A2 is first's.
    const second = await insertBooking(eventId, 'confirmed', ['A2', 'A3'], { seats: 'untouched' });
    await setSeats(eventId, ['A3'], 'booked', second);
    const secondPayment = randomUUID();
    const secondIntent = await authorize(second, { paymentId: secondPayment });
    await capture(secondIntent);
    await insertPayment(secondPayment, second, 'captured', secondIntent);

    const lapsed = await voidedBooking(eventId, ['A4', 'A5']);
    await setSeats(eventId, ['A4'], 'booked', lapsed.bookingId);

    const half = await paidBooking(eventId, ['A6', 'A7']);
    await setSeats(eventId, ['A7'], 'free', null);

    const ids = [first.bookingId, second, lapsed.bookingId, half.bookingId];
    expect((await check(ids)).violations).toEqual([
      `seat A4 of event ${eventId} is booked for booking ${lapsed.bookingId}, which is expired, ` +
        'not confirmed',
      `booking ${second} is confirmed but its seat A2 of event ${eventId} is booked for booking ` +
        first.bookingId,
      `booking ${half.bookingId} is confirmed but its seat A7 of event ${eventId} is free, not booked`,
      `seat A2 of event ${eventId} is booked twice: it is in 2 confirmed bookings ` +
        `(${first.bookingId}, ${second})`,
    ]);
    // The double booking shows from the other side too, with only the first booking in scope.
    expect((await check([first.bookingId])).violations).toEqual([
      expect.stringContaining(`seat A2 of event ${eventId} is booked twice`),
    ]);
  });

  it("rule 5: reports payments that disagree with the gateway's intents", async () => {
    const eventId = await newEvent();
    // Captured at the gateway, but the API still thinks it is only authorized.
    const unrecorded = await insertBooking(eventId, 'confirmed', ['A1', 'A2']);
    const unrecordedPayment = randomUUID();
    const unrecordedIntent = await authorize(unrecorded, { paymentId: unrecordedPayment });
    await capture(unrecordedIntent);
    await insertPayment(unrecordedPayment, unrecorded, 'authorized', unrecordedIntent);

    // Voided at the gateway, captured in the API.
    const voided = await voidedBooking(eventId, ['A3', 'A4']);
    await db.query(`UPDATE payments SET status = 'captured' WHERE id = $1`, [voided.paymentId]);

    // Refunded at the gateway, captured in the API.
    const cancelled = await insertBooking(eventId, 'cancelled', ['A5', 'A6']);
    const cancelledPayment = randomUUID();
    const cancelledIntent = await authorize(cancelled, { paymentId: cancelledPayment });
    await capture(cancelledIntent);
    await refund(cancelledIntent);
    await insertPayment(cancelledPayment, cancelled, 'captured', cancelledIntent);

    // A payment stuck pending with nothing left to do.
    const stuck = await insertBooking(eventId, 'expired', ['A7']);
    const stuckPayment = randomUUID();
    await insertPayment(stuckPayment, stuck, 'pending', null, { amountCents: PRICE });

    // An orphan authorization (the API crashed before writing its payment row), and a voided one.
    const orphaned = await insertBooking(eventId, 'expired', ['A8']);
    const orphanPayment = randomUUID();
    const orphanIntent = await authorize(orphaned, { paymentId: orphanPayment, amount: PRICE });
    await voidIntent(await authorize(orphaned, { amount: PRICE }));

    const ids = [unrecorded, voided.bookingId, cancelled, stuck, orphaned];
    expect((await check(ids)).violations).toEqual([
      `intent ${orphanIntent} of booking ${orphaned} is authorized but not captured ` +
        '(requires_capture): the authorization was neither captured nor voided',
      `payment ${unrecordedPayment} of booking ${unrecorded} is still authorized and has no next ` +
        'action that would finish it',
      `payment ${unrecordedPayment} of booking ${unrecorded} is authorized but intent ` +
        `${unrecordedIntent} is captured (5000 EUR cents, nothing refunded), so the payment ` +
        'should be captured',
      `payment ${voided.paymentId} of booking ${voided.bookingId} is captured but intent ` +
        `${voided.intentId} is canceled (voided), so the payment should be voided`,
      `payment ${cancelledPayment} of booking ${cancelled} is captured but intent ` +
        `${cancelledIntent} is captured and refunded 5000 EUR cents of 5000 EUR cents, so the ` +
        'payment should be refunded',
      `payment ${stuckPayment} of booking ${stuck} is still pending and has no next action that ` +
        'would finish it',
      `intent ${orphanIntent} of booking ${orphaned} is an orphan authorization: payment ` +
        `${orphanPayment} does not exist and the intent is authorized but not captured ` +
        '(requires_capture), neither canceled nor fully refunded',
    ]);
  });

  it('waits for a reconciler that is still finishing (settleMs), and gives up when time is up', async () => {
    const eventId = await newEvent();
    const bookingId = await insertBooking(eventId, 'confirmed', ['A1', 'A2']);
    const paymentId = randomUUID();
    const intentId = await authorize(bookingId, { paymentId });
    await insertPayment(paymentId, bookingId, 'authorized', intentId, { nextAction: 'capture' });

    const early = await check([bookingId], { settleMs: 600 });
    expect(early.violations).toHaveLength(2);
    expect(early.attempts).toBeGreaterThan(1);

    // The reconciler: capture, then record it, a moment after the check started.
    const reconciler = sleep(700).then(async () => {
      await capture(intentId);
      await db.query(`UPDATE payments SET status = 'captured', next_action = NULL WHERE id = $1`, [
        paymentId,
      ]);
    });
    const settled = await check([bookingId], { settleMs: 20_000 });
    await reconciler;
    expect(settled.violations).toEqual([]);
    expect(settled.attempts).toBeGreaterThan(1);
  });

  it('reads every page of intents', async () => {
    const eventId = await newEvent();
    const { bookingId } = await voidedBooking(eventId, ['A1']);
    for (let i = 0; i < 4; i += 1) await voidIntent(await authorize(bookingId, { amount: 1000 }));
    const last = await authorize(bookingId, { amount: 1000 });

    const report = await check([bookingId], { pageSize: 2 });
    expect(report.intents).toBe(6);
    expect(report.violations).toEqual([
      expect.stringContaining(`intent ${last} of booking ${bookingId} is authorized`),
      expect.stringContaining(`intent ${last} of booking ${bookingId} is an orphan authorization`),
    ]);
  });

  it('without bookingIds checks everything, and ignores intents that name no booking', async () => {
    const eventId = await newEvent();
    const { bookingId } = await voidedBooking(eventId, ['A1']);
    const open = await authorize(bookingId);
    const foreign = await authorize('', { metadata: { purpose: 'not a booking' } });

    const report = await checkLedger({ databaseUrl: testDatabaseUrl(), gatewayUrl: gateway.url });
    expect(report.violations).toContain(
      `intent ${open} of booking ${bookingId} is authorized but not captured (requires_capture): ` +
        'the authorization was neither captured nor voided',
    );
    expect(report.violations.filter((v) => v.includes(foreign))).toEqual([]);
    expect(report.intents).toBeGreaterThanOrEqual(2);
  });

  describe('the command line', () => {
    function run(args: string[], env: Record<string, string> = {}) {
      const out: string[] = [];
      const err: string[] = [];
      const code = runCheckLedger(
        args,
        { DATABASE_URL: testDatabaseUrl(), GATEWAY_URL: gateway.url, ...env },
        { out: (line) => out.push(line), err: (line) => err.push(line) },
      );
      return code.then((exitCode) => ({ exitCode, out, err }));
    }

    it('exits 0 with a one-line summary when clean, 1 with every violation when not', async () => {
      const eventId = await newEvent();
      const paid = await paidBooking(eventId, ['A1', 'A2']);
      const clean = await run(['--booking', paid.bookingId]);
      expect(clean).toEqual({
        exitCode: 0,
        out: [
          'Ledger clean: 1 intent (1 captured), 1 booking (1 confirmed), 2 booked seats, 1 payment.',
        ],
        err: [],
      });

      const voided = await voidedBooking(eventId, ['A3']);
      await setSeats(eventId, ['A3'], 'booked', voided.bookingId);
      const dirty = await run([
        '--booking',
        paid.bookingId,
        `--booking=${voided.bookingId}`,
        '--wait',
        '0.3',
      ]);
      expect(dirty.exitCode).toBe(1);
      expect(dirty.out).toEqual([
        `seat A3 of event ${eventId} is booked for booking ${voided.bookingId}, which is expired, ` +
          'not confirmed',
        expect.stringMatching(/^Ledger has 1 violation: 2 intents .*, after \d+ checks\.$/),
      ]);
    });

    it('prints the report as JSON with --json', async () => {
      const eventId = await newEvent();
      const paid = await paidBooking(eventId, ['A1', 'A2']);
      const typo = randomUUID();
      const result = await run(['--json', '--booking', paid.bookingId, '--booking', typo]);
      expect(result.exitCode).toBe(0);
      expect(JSON.parse(result.out.join('\n'))).toMatchObject({
        violations: [],
        intents: 1,
        confirmedBookings: 1,
        unknownBookingIds: [typo],
        attempts: 1,
      });
    });

    it('exits 2 on bad arguments or when the gateway cannot be reached', async () => {
      expect((await run(['--bogus'])).exitCode).toBe(2);
      expect((await run(['--wait', 'soon'])).exitCode).toBe(2);
      expect((await run(['--booking'])).exitCode).toBe(2);
      const unreachable = await run(['--booking', randomUUID()], {
        GATEWAY_URL: 'http://127.0.0.1:9',
      });
      expect(unreachable.exitCode).toBe(2);
      expect(unreachable.err.join('\n')).toMatch(/could not read the ledger/);
      expect(unreachable.err.join('\n')).not.toContain('postgres:postgres@');
    });
  });
});

import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';

/**
 * The ledger check: does the money at the gateway agree with the bookings, seats and payments in
 * PostgreSQL? `evaluateLedger` is the pure rule set over plain rows (unit-tested with hand-made
 * rows); `checkLedger` reads the rows from a real database and a real gateway and applies it.
 */

/** Amounts in minor units; PostgreSQL's bigint arrives as a string, so every form is accepted. */
export type Cents = string | number | bigint;

export type IntentStatus =
  'requires_payment_method' | 'processing' | 'requires_capture' | 'succeeded' | 'canceled';

/** A payment intent as the gateway answers it (the fields the rules read). */
export interface LedgerIntent {
  id: string;
  amount: number;
  amount_received: number;
  amount_refunded: number;
  currency: string;
  status: IntentStatus;
  metadata?: Record<string, string> | null;
}

export interface LedgerBooking {
  id: string;
  customerId: string;
  eventId: string;
  status: string;
  seatLabels: string[];
  amountCents: Cents;
  currency: string;
}

export interface LedgerSeat {
  eventId: string;
  label: string;
  status: string;
  bookingId: string | null;
}

export interface LedgerPayment {
  id: string;
  bookingId: string;
  status: string;
  nextAction: string | null;
  amountCents: Cents;
  refundedCents: Cents;
  currency: string;
  gatewayIntentId: string | null;
}

export interface LedgerRows {
  intents: LedgerIntent[];
  bookings: LedgerBooking[];
  seats: LedgerSeat[];
  payments: LedgerPayment[];
}

export interface LedgerFindings {
  violations: string[];
  /** Intents that name a booking (in scope). */
  intents: number;
  /** Of those, captured and not fully refunded. */
  capturedIntents: number;
  bookings: number;
  confirmedBookings: number;
  bookedSeats: number;
  payments: number;
  /** Requested booking ids that are neither a booking nor named by an intent: probably a typo. */
  unknownBookingIds: string[];
}

export interface LedgerReport extends LedgerFindings {
  /** How many times the ledger was read; more than one when settleMs let a reconciler finish. */
  attempts: number;
}

export interface LedgerCheckOptions {
  databaseUrl: string;
  gatewayUrl: string;
  /** Only these bookings and the intents that name them; other tests or tenants share the data. */
  bookingIds?: string[];
  /** Re-check until clean for up to this long: a reconciler may still be voiding or capturing. */
  settleMs?: number;
  /** Intents per gateway page (the gateway allows at most 100). */
  pageSize?: number;
  /** How long to wait between re-checks while settling. */
  retryIntervalMs?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Payment statuses that only make sense once the gateway holds an intent for the payment. */
const STATUSES_WITH_INTENT = new Set(['authorized', 'captured', 'voided', 'refunded']);

function normalizeId(id: string): string {
  return id.trim().toLowerCase();
}

function metadataValue(intent: LedgerIntent, key: string): string | undefined {
  const value = intent.metadata?.[key];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function sameCents(a: Cents, b: Cents): boolean {
  return BigInt(a) === BigInt(b);
}

function sameCurrency(a: string, b: string): boolean {
  return a.trim().toUpperCase() === b.trim().toUpperCase();
}

function money(cents: Cents, currency: string): string {
  return `${String(cents)} ${currency.trim().toUpperCase()} cents`;
}

function seatName(eventId: string, label: string): string {
  return `seat ${label} of event ${eventId}`;
}

/** Captured and not (fully) refunded: the customer's money sits with us. */
function isCapturedUnrefunded(intent: LedgerIntent): boolean {
  return intent.status === 'succeeded' && intent.amount_refunded < intent.amount_received;
}

/** Money is held (authorized) or kept (captured, not fully refunded) for this intent. */
function holdsMoney(intent: LedgerIntent): boolean {
  return (
    intent.status === 'requires_capture' ||
    intent.status === 'processing' ||
    isCapturedUnrefunded(intent)
  );
}

function describeIntent(intent: LedgerIntent): string {
  const received = money(intent.amount_received, intent.currency);
  switch (intent.status) {
    case 'succeeded':
      if (intent.amount_refunded === 0) return `captured (${received}, nothing refunded)`;
      return `captured and refunded ${money(intent.amount_refunded, intent.currency)} of ${received}`;
    case 'canceled':
      return 'canceled (voided)';
    case 'requires_capture':
      return 'authorized but not captured (requires_capture)';
    case 'processing':
      return 'still processing';
    case 'requires_payment_method':
      return 'declined (requires_payment_method)';
    default:
      return String(intent.status);
  }
}

/** The payment statuses that agree with an intent's state at the gateway. */
function agreeingPaymentStatuses(intent: LedgerIntent): string[] {
  switch (intent.status) {
    case 'succeeded':
      return intent.amount_refunded > 0 ? ['refunded'] : ['captured'];
    case 'canceled':
      return ['voided'];
    case 'requires_capture':
    case 'processing':
      return ['pending', 'authorized'];
    default:
      return ['pending', 'failed'];
  }
}

function groupBy<T>(items: Iterable<T>, key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/**
 * Applies every ledger rule to plain rows and answers the violations in plain words. With
 * `bookingIds`, only those bookings, their seats, payments and intents are judged; other rows serve
 * as context only (e.g. another confirmed booking holding the same seat).
 */
export function evaluateLedger(rows: LedgerRows, bookingIds?: readonly string[]): LedgerFindings {
  const scope = bookingIds ? new Set(bookingIds.map(normalizeId)) : undefined;
  const inScope = (bookingId: string | null | undefined): boolean =>
    bookingId !== null &&
    bookingId !== undefined &&
    (scope === undefined || scope.has(normalizeId(bookingId)));

  const bookingsById = new Map(rows.bookings.map((b) => [normalizeId(b.id), b]));
  const intentsById = new Map(rows.intents.map((i) => [i.id, i]));
  const paymentsById = new Map(rows.payments.map((p) => [normalizeId(p.id), p]));
  const seatsByKey = new Map(rows.seats.map((s) => [`${s.eventId}/${s.label}`, s]));

  const intents = rows.intents.filter((i) => inScope(metadataValue(i, 'bookingId')));
  const bookings = rows.bookings.filter((b) => inScope(b.id));
  const confirmed = bookings.filter((b) => b.status === 'confirmed');
  const payments = rows.payments.filter((p) => inScope(p.bookingId));
  const bookedSeats = rows.seats.filter((s) => s.status === 'booked' && inScope(s.bookingId));
  const violations: string[] = [];

  // Rules 1 and 3: where the money of each intent is, judged by its booking.
  const capturedByBooking = new Map<string, LedgerIntent[]>();
  for (const intent of intents) {
    const bookingId = metadataValue(intent, 'bookingId') ?? '';
    const booking = bookingsById.get(normalizeId(bookingId));
    const name = `intent ${intent.id} of booking ${bookingId}`;
    if (intent.status === 'requires_capture' || intent.status === 'processing') {
      violations.push(
        `${name} is ${describeIntent(intent)}: the authorization was neither captured nor voided`,
      );
      continue;
    }
    if (!isCapturedUnrefunded(intent)) continue;
    const kept = money(intent.amount_received - intent.amount_refunded, intent.currency);
    if (!booking) {
      violations.push(`${name} keeps ${kept} but the booking does not exist; it must be refunded`);
      continue;
    }
    if (booking.status !== 'confirmed') {
      violations.push(
        `${name} keeps ${kept} but the booking is ${booking.status}, not confirmed; ` +
          `the capture must be refunded in full`,
      );
      continue;
    }
    const key = normalizeId(booking.id);
    capturedByBooking.set(key, [...(capturedByBooking.get(key) ?? []), intent]);
    if (!sameCurrency(intent.currency, booking.currency)) {
      violations.push(
        `${name} is in ${intent.currency.toUpperCase()} but the booking is in ${booking.currency.toUpperCase()}`,
      );
    } else if (!sameCents(intent.amount_received - intent.amount_refunded, booking.amountCents)) {
      violations.push(
        `${name} keeps ${kept} but the booking costs ${money(booking.amountCents, booking.currency)}`,
      );
    }
    const customerId = metadataValue(intent, 'customerId');
    if (customerId !== undefined && normalizeId(customerId) !== normalizeId(booking.customerId)) {
      violations.push(
        `${name} was paid by customer ${customerId} but the booking belongs to customer ${booking.customerId}`,
      );
    }
  }

  // Rule 2 (and the "no two captures" half of rule 1): one captured intent per confirmed booking.
  for (const booking of confirmed) {
    const captured = capturedByBooking.get(normalizeId(booking.id)) ?? [];
    if (captured.length === 0) {
      violations.push(
        `booking ${booking.id} is confirmed but no captured, unrefunded intent at the gateway pays for it`,
      );
    } else if (captured.length > 1) {
      violations.push(
        `booking ${booking.id} is confirmed and was charged ${captured.length} times: intents ` +
          `${captured.map((i) => i.id).join(', ')} are all captured and not refunded`,
      );
    }
  }

  // Rule 4: a booked seat belongs to exactly one confirmed booking, and the other way round.
  for (const seat of rows.seats) {
    if (seat.status !== 'booked') continue;
    const name = seatName(seat.eventId, seat.label);
    if (seat.bookingId === null) {
      if (scope === undefined) violations.push(`${name} is booked but names no booking`);
      continue;
    }
    // A seat booked for a booking out of scope is that booking's business; in-scope bookings
    // still see it below when it is one of their seats.
    if (!inScope(seat.bookingId)) continue;
    const booking = bookingsById.get(normalizeId(seat.bookingId));
    if (!booking) {
      violations.push(`${name} is booked for booking ${seat.bookingId}, which does not exist`);
    } else if (booking.status !== 'confirmed') {
      violations.push(
        `${name} is booked for booking ${booking.id}, which is ${booking.status}, not confirmed`,
      );
    } else if (booking.eventId !== seat.eventId || !booking.seatLabels.includes(seat.label)) {
      violations.push(
        `${name} is booked for booking ${booking.id}, which does not hold it ` +
          `(its seats: ${booking.seatLabels.join(', ')} of event ${booking.eventId})`,
      );
    }
  }
  for (const booking of confirmed) {
    for (const label of new Set(booking.seatLabels)) {
      const seat = seatsByKey.get(`${booking.eventId}/${label}`);
      const name = seatName(booking.eventId, label);
      if (!seat) {
        violations.push(`booking ${booking.id} is confirmed with ${name}, which does not exist`);
      } else if (seat.status !== 'booked') {
        violations.push(
          `booking ${booking.id} is confirmed but its ${name} is ${seat.status}, not booked`,
        );
      } else if (
        seat.bookingId === null ||
        normalizeId(seat.bookingId) !== normalizeId(booking.id)
      ) {
        violations.push(
          `booking ${booking.id} is confirmed but its ${name} is booked for booking ${seat.bookingId}`,
        );
      }
    }
  }
  const confirmedBySeat = groupBy(
    rows.bookings
      .filter((b) => b.status === 'confirmed')
      .flatMap((b) => [...new Set(b.seatLabels)].map((label) => ({ booking: b, label }))),
    ({ booking, label }) => `${booking.eventId}/${label}`,
  );
  for (const holders of confirmedBySeat.values()) {
    if (holders.length < 2 || !holders.some(({ booking }) => inScope(booking.id))) continue;
    const { booking, label } = holders[0];
    violations.push(
      `${seatName(booking.eventId, label)} is booked twice: it is in ${holders.length} confirmed ` +
        `bookings (${holders.map((h) => h.booking.id).join(', ')})`,
    );
  }

  // Rule 5: the API's payments agree with the gateway.
  for (const payment of payments) {
    const name = `payment ${payment.id} of booking ${payment.bookingId}`;
    if (payment.nextAction === null && ['pending', 'authorized'].includes(payment.status)) {
      violations.push(
        `${name} is still ${payment.status} and has no next action that would finish it`,
      );
    }
    if (payment.gatewayIntentId === null) {
      if (STATUSES_WITH_INTENT.has(payment.status)) {
        violations.push(`${name} is ${payment.status} but records no gateway intent`);
      }
      continue;
    }
    const intent = intentsById.get(payment.gatewayIntentId);
    if (!intent) {
      violations.push(
        `${name} records intent ${payment.gatewayIntentId}, which the gateway does not know`,
      );
      continue;
    }
    const intentBookingId = metadataValue(intent, 'bookingId');
    if (
      intentBookingId === undefined ||
      normalizeId(intentBookingId) !== normalizeId(payment.bookingId)
    ) {
      violations.push(
        `${name} records intent ${intent.id}, which the gateway holds for ` +
          (intentBookingId === undefined ? 'no booking' : `booking ${intentBookingId}`),
      );
    }
    if (
      !sameCurrency(intent.currency, payment.currency) ||
      !sameCents(intent.amount, payment.amountCents)
    ) {
      violations.push(
        `${name} is for ${money(payment.amountCents, payment.currency)} but intent ${intent.id} ` +
          `is for ${money(intent.amount, intent.currency)}`,
      );
    }
    const agreeing = agreeingPaymentStatuses(intent);
    if (!agreeing.includes(payment.status)) {
      violations.push(
        `${name} is ${payment.status} but intent ${intent.id} is ${describeIntent(intent)}, ` +
          `so the payment should be ${agreeing.join(' or ')}`,
      );
    } else if (
      payment.status === 'refunded' &&
      !sameCents(payment.refundedCents, intent.amount_refunded)
    ) {
      violations.push(
        `${name} records ${money(payment.refundedCents, payment.currency)} refunded but intent ` +
          `${intent.id} has ${money(intent.amount_refunded, intent.currency)} refunded`,
      );
    }
  }
  // Rule 5, from the gateway's side: money held for a payment the API does not track.
  for (const intent of intents) {
    if (!holdsMoney(intent)) continue;
    const name = `intent ${intent.id} of booking ${metadataValue(intent, 'bookingId')}`;
    const paymentId = metadataValue(intent, 'paymentId');
    const payment = paymentId === undefined ? undefined : paymentsById.get(normalizeId(paymentId));
    if (!payment) {
      violations.push(
        `${name} is an orphan authorization: ` +
          (paymentId === undefined
            ? 'it names no payment'
            : `payment ${paymentId} does not exist`) +
          ` and the intent is ${describeIntent(intent)}, neither canceled nor fully refunded`,
      );
    } else if (payment.gatewayIntentId !== intent.id) {
      violations.push(
        `${name} is ${describeIntent(intent)} for payment ${payment.id}, but that payment records ` +
          (payment.gatewayIntentId === null
            ? 'no gateway intent'
            : `intent ${payment.gatewayIntentId}`) +
          `: the API does not track this money`,
      );
    }
  }

  const known = new Set([
    ...rows.bookings.map((b) => normalizeId(b.id)),
    ...rows.intents.flatMap((i) => {
      const bookingId = metadataValue(i, 'bookingId');
      return bookingId === undefined ? [] : [normalizeId(bookingId)];
    }),
  ]);
  return {
    violations,
    intents: intents.length,
    capturedIntents: intents.filter(isCapturedUnrefunded).length,
    bookings: bookings.length,
    confirmedBookings: confirmed.length,
    bookedSeats: bookedSeats.length,
    payments: payments.length,
    unknownBookingIds: [...(scope ?? [])].filter((id) => !known.has(id)),
  };
}

interface IntentPage {
  data: LedgerIntent[];
  has_more: boolean;
}

async function gatewayGet<T>(url: string): Promise<T | undefined> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  } catch (error) {
    // fetch says only "fetch failed"; the reason (ECONNREFUSED, a timeout) is in its cause.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new Error(`cannot reach the gateway (GET ${url}): ${reason}`, { cause: error });
  }
  if (response.status === 404) return undefined;
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`the gateway answered ${response.status} to GET ${url}: ${text.slice(0, 300)}`);
  }
  return JSON.parse(text) as T;
}

/** Every intent, oldest first, page by page (the gateway answers at most 100 at a time). */
async function listIntents(gatewayUrl: string, pageSize: number): Promise<LedgerIntent[]> {
  const base = gatewayUrl.replace(/\/+$/, '');
  const intents: LedgerIntent[] = [];
  let after: string | undefined;
  for (;;) {
    const query = new URLSearchParams({ limit: String(pageSize) });
    if (after !== undefined) query.set('starting_after', after);
    const page = await gatewayGet<IntentPage>(`${base}/v1/payment_intents?${query.toString()}`);
    if (!page) throw new Error(`the gateway at ${base} has no /v1/payment_intents`);
    intents.push(...page.data);
    if (!page.has_more || page.data.length === 0) return intents;
    after = page.data[page.data.length - 1].id;
  }
}

interface BookingRow {
  id: string;
  customer_id: string;
  event_id: string;
  status: string;
  seat_labels: string[];
  amount_cents: string;
  currency: string;
}

interface SeatRow {
  event_id: string;
  label: string;
  status: string;
  booking_id: string | null;
}

interface PaymentRow {
  id: string;
  booking_id: string;
  status: string;
  next_action: string | null;
  amount_cents: string;
  refunded_cents: string;
  currency: string;
  gateway_intent_id: string | null;
}

const BOOKING_COLUMNS =
  'b.id, b.customer_id, b.event_id, b.status, b.seat_labels, b.amount_cents, b.currency, ' +
  'b.created_at';
const SEAT_COLUMNS = 's.event_id, s.label, s.status, s.booking_id, s.position';
const PAYMENT_COLUMNS =
  'p.id, p.booking_id, p.status, p.next_action, p.amount_cents, p.refunded_cents, p.currency, ' +
  'p.gateway_intent_id, p.created_at';
// Oldest first, so the violations come out in a stable order that reads like a history.
const BOOKING_ORDER = 'ORDER BY created_at, id';
const SEAT_ORDER = 'ORDER BY event_id, position, label';
const PAYMENT_ORDER = 'ORDER BY created_at, id';

function toPayment(row: PaymentRow): LedgerPayment {
  return {
    id: row.id,
    bookingId: row.booking_id,
    status: row.status,
    nextAction: row.next_action,
    amountCents: row.amount_cents,
    refundedCents: row.refunded_cents,
    currency: row.currency,
    gatewayIntentId: row.gateway_intent_id,
  };
}

/**
 * Bookings, seats and payments from one snapshot (REPEATABLE READ), so the rows agree with each
 * other even while the API keeps writing. `uuids` undefined = everything.
 */
async function readDatabase(
  client: Client,
  uuids: string[] | undefined,
): Promise<Omit<LedgerRows, 'intents'>> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const bookings = await client.query<BookingRow>(
      uuids === undefined
        ? `SELECT ${BOOKING_COLUMNS} FROM bookings b ${BOOKING_ORDER}`
        : // Plus the confirmed bookings that share a seat with one in scope: the double-booking
          // rule needs to see them.
          `SELECT ${BOOKING_COLUMNS} FROM bookings b WHERE b.id = ANY($1::uuid[])
           UNION
           SELECT ${BOOKING_COLUMNS} FROM bookings o
             JOIN bookings b ON b.event_id = o.event_id AND b.seat_labels && o.seat_labels
            WHERE o.id = ANY($1::uuid[]) AND b.status = 'confirmed'
           ${BOOKING_ORDER}`,
      uuids === undefined ? [] : [uuids],
    );
    // Booked seats and every seat a confirmed booking names; scoped: the seats booked for the
    // requested bookings and every seat they name, whoever holds it now.
    const seats = await client.query<SeatRow>(
      uuids === undefined
        ? `SELECT ${SEAT_COLUMNS} FROM seats s WHERE s.status = 'booked'
           UNION
           SELECT ${SEAT_COLUMNS} FROM bookings b
             JOIN seats s ON s.event_id = b.event_id AND s.label = ANY(b.seat_labels)
            WHERE b.status = 'confirmed'
           ${SEAT_ORDER}`
        : `SELECT ${SEAT_COLUMNS} FROM seats s WHERE s.booking_id = ANY($1::uuid[])
           UNION
           SELECT ${SEAT_COLUMNS} FROM bookings b
             JOIN seats s ON s.event_id = b.event_id AND s.label = ANY(b.seat_labels)
            WHERE b.id = ANY($1::uuid[])
           ${SEAT_ORDER}`,
      uuids === undefined ? [] : [uuids],
    );
    const payments = await client.query<PaymentRow>(
      uuids === undefined
        ? `SELECT ${PAYMENT_COLUMNS} FROM payments p ${PAYMENT_ORDER}`
        : `SELECT ${PAYMENT_COLUMNS} FROM payments p WHERE p.booking_id = ANY($1::uuid[])
           ${PAYMENT_ORDER}`,
      uuids === undefined ? [] : [uuids],
    );
    await client.query('COMMIT');
    return {
      bookings: bookings.rows.map((row) => ({
        id: row.id,
        customerId: row.customer_id,
        eventId: row.event_id,
        status: row.status,
        seatLabels: row.seat_labels,
        amountCents: row.amount_cents,
        currency: row.currency,
      })),
      seats: seats.rows.map((row) => ({
        eventId: row.event_id,
        label: row.label,
        status: row.status,
        bookingId: row.booking_id,
      })),
      payments: payments.rows.map(toPayment),
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Reads the database first and the gateway second: an intent a payment row records was created
 * before that row was written, so it is in the list (a read the other way round would report
 * intents created in between as unknown).
 */
async function readLedger(
  client: Client,
  options: LedgerCheckOptions,
  scope: string[] | undefined,
): Promise<LedgerRows> {
  const uuids = scope?.filter((id) => UUID.test(id));
  const database = await readDatabase(client, uuids);
  const intents = await listIntents(options.gatewayUrl, options.pageSize ?? 100);
  const listed = new Set(intents.map((i) => i.id));
  const base = options.gatewayUrl.replace(/\/+$/, '');

  // Intents a payment records but the list did not show (created after the list was read).
  for (const id of new Set(database.payments.map((p) => p.gatewayIntentId))) {
    if (id === null || listed.has(id)) continue;
    const intent = await gatewayGet<LedgerIntent>(
      `${base}/v1/payment_intents/${encodeURIComponent(id)}`,
    );
    if (intent) intents.push(intent);
  }

  // Payments that in-scope intents name but that belong to another booking, so the orphan rule
  // does not call them missing.
  const loaded = new Set(database.payments.map((p) => normalizeId(p.id)));
  const named = intents
    .filter((i) => {
      const bookingId = metadataValue(i, 'bookingId');
      return (
        bookingId !== undefined && (scope === undefined || scope.includes(normalizeId(bookingId)))
      );
    })
    .map((i) => metadataValue(i, 'paymentId'))
    .filter(
      (id): id is string => id !== undefined && UUID.test(id) && !loaded.has(normalizeId(id)),
    );
  if (named.length > 0) {
    const extra = await client.query<PaymentRow>(
      `SELECT ${PAYMENT_COLUMNS} FROM payments p WHERE p.id = ANY($1::uuid[]) ${PAYMENT_ORDER}`,
      [named],
    );
    database.payments.push(...extra.rows.map(toPayment));
  }
  return { intents, ...database };
}

/**
 * Compares the gateway's intents with the bookings, seats and payments in PostgreSQL. With
 * `settleMs`, re-reads until the ledger is clean or the time is up, and answers the last reading.
 */
export async function checkLedger(options: LedgerCheckOptions): Promise<LedgerReport> {
  const scope = options.bookingIds?.map(normalizeId);
  const deadline = Date.now() + (options.settleMs ?? 0);
  const client = new Client({
    connectionString: options.databaseUrl,
    connectionTimeoutMillis: 5000,
  });
  await client.connect();
  try {
    for (let attempts = 1; ; attempts += 1) {
      const findings = evaluateLedger(await readLedger(client, options, scope), scope);
      const left = deadline - Date.now();
      if (findings.violations.length === 0 || left <= 0) return { ...findings, attempts };
      await sleep(Math.min(options.retryIntervalMs ?? 500, left));
    }
  } finally {
    await client.end();
  }
}

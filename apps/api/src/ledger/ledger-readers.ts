import type { Client } from 'pg';
import {
  type LedgerBooking,
  type LedgerIntent,
  type LedgerPayment,
  type LedgerRows,
  type LedgerSeat,
  metadataValue,
  normalizeId,
} from './ledger-rows';

/**
 * What the ledger check reads: bookings, seats and payments from PostgreSQL (one snapshot), the
 * payment intents from the gateway's HTTP API.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Where the intents come from. */
export interface GatewaySource {
  url: string;
  /** Intents per page (the gateway allows at most 100). */
  pageSize: number;
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

function baseUrl(gateway: GatewaySource): string {
  return gateway.url.replace(/\/+$/, '');
}

/** Every intent, oldest first, page by page (the gateway answers at most 100 at a time). */
async function listIntents(gateway: GatewaySource): Promise<LedgerIntent[]> {
  const base = baseUrl(gateway);
  const intents: LedgerIntent[] = [];
  let after: string | undefined;
  for (;;) {
    const query = new URLSearchParams({ limit: String(gateway.pageSize) });
    if (after !== undefined) query.set('starting_after', after);
    const page = await gatewayGet<IntentPage>(`${base}/v1/payment_intents?${query.toString()}`);
    if (!page) throw new Error(`the gateway at ${base} has no /v1/payment_intents`);
    intents.push(...page.data);
    if (!page.has_more || page.data.length === 0) return intents;
    after = page.data[page.data.length - 1].id;
  }
}

/** Intents a payment records but the list did not show (created after the list was read). */
async function readRecordedIntents(
  gateway: GatewaySource,
  payments: LedgerPayment[],
  listed: Set<string>,
): Promise<LedgerIntent[]> {
  const found: LedgerIntent[] = [];
  for (const id of new Set(payments.map((p) => p.gatewayIntentId))) {
    if (id === null || listed.has(id)) continue;
    const intent = await gatewayGet<LedgerIntent>(
      `${baseUrl(gateway)}/v1/payment_intents/${encodeURIComponent(id)}`,
    );
    if (intent) found.push(intent);
  }
  return found;
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

function toBooking(row: BookingRow): LedgerBooking {
  return {
    id: row.id,
    customerId: row.customer_id,
    eventId: row.event_id,
    status: row.status,
    seatLabels: row.seat_labels,
    amountCents: row.amount_cents,
    currency: row.currency,
  };
}

function toSeat(row: SeatRow): LedgerSeat {
  return {
    eventId: row.event_id,
    label: row.label,
    status: row.status,
    bookingId: row.booking_id,
  };
}

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

/** A read of every row (`all`) or of those of the requested bookings (`scoped`, $1 their ids). */
interface ScopedQuery {
  all: string;
  scoped: string;
}

const BOOKINGS: ScopedQuery = {
  all: `SELECT ${BOOKING_COLUMNS} FROM bookings b ${BOOKING_ORDER}`,
  // Plus the confirmed bookings that share a seat with one in scope: the double-booking rule
  // needs to see them.
  scoped: `SELECT ${BOOKING_COLUMNS} FROM bookings b WHERE b.id = ANY($1::uuid[])
           UNION
           SELECT ${BOOKING_COLUMNS} FROM bookings o
             JOIN bookings b ON b.event_id = o.event_id AND b.seat_labels && o.seat_labels
            WHERE o.id = ANY($1::uuid[]) AND b.status = 'confirmed'
           ${BOOKING_ORDER}`,
};

// Booked seats and every seat a confirmed booking names; scoped: the seats booked for the
// requested bookings and every seat they name, whoever holds it now.
const SEATS: ScopedQuery = {
  all: `SELECT ${SEAT_COLUMNS} FROM seats s WHERE s.status = 'booked'
        UNION
        SELECT ${SEAT_COLUMNS} FROM bookings b
          JOIN seats s ON s.event_id = b.event_id AND s.label = ANY(b.seat_labels)
         WHERE b.status = 'confirmed'
        ${SEAT_ORDER}`,
  scoped: `SELECT ${SEAT_COLUMNS} FROM seats s WHERE s.booking_id = ANY($1::uuid[])
           UNION
           SELECT ${SEAT_COLUMNS} FROM bookings b
             JOIN seats s ON s.event_id = b.event_id AND s.label = ANY(b.seat_labels)
            WHERE b.id = ANY($1::uuid[])
           ${SEAT_ORDER}`,
};

const PAYMENTS: ScopedQuery = {
  all: `SELECT ${PAYMENT_COLUMNS} FROM payments p ${PAYMENT_ORDER}`,
  scoped: `SELECT ${PAYMENT_COLUMNS} FROM payments p WHERE p.booking_id = ANY($1::uuid[])
           ${PAYMENT_ORDER}`,
};

/** `uuids` undefined = every row. */
async function readScoped<R extends object, T>(
  client: Client,
  query: ScopedQuery,
  uuids: string[] | undefined,
  map: (row: R) => T,
): Promise<T[]> {
  const { rows } = await client.query<R>(
    uuids === undefined ? query.all : query.scoped,
    uuids === undefined ? [] : [uuids],
  );
  return rows.map(map);
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
    const bookings = await readScoped(client, BOOKINGS, uuids, toBooking);
    const seats = await readScoped(client, SEATS, uuids, toSeat);
    const payments = await readScoped(client, PAYMENTS, uuids, toPayment);
    await client.query('COMMIT');
    return { bookings, seats, payments };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Payments that in-scope intents name but that belong to another booking, so the orphan rule
 * does not call them missing.
 */
async function readNamedPayments(
  client: Client,
  intents: LedgerIntent[],
  loadedPayments: LedgerPayment[],
  scope: string[] | undefined,
): Promise<LedgerPayment[]> {
  const loaded = new Set(loadedPayments.map((p) => normalizeId(p.id)));
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
  if (named.length === 0) return [];
  const { rows } = await client.query<PaymentRow>(
    `SELECT ${PAYMENT_COLUMNS} FROM payments p WHERE p.id = ANY($1::uuid[]) ${PAYMENT_ORDER}`,
    [named],
  );
  return rows.map(toPayment);
}

/**
 * Reads the database first and the gateway second: an intent a payment row records was created
 * before that row was written, so it is in the list (a read the other way round would report
 * intents created in between as unknown). `scope`: normalized booking ids, undefined = all.
 */
export async function readLedger(
  client: Client,
  gateway: GatewaySource,
  scope: string[] | undefined,
): Promise<LedgerRows> {
  const database = await readDatabase(
    client,
    scope?.filter((id) => UUID.test(id)),
  );
  const intents = await listIntents(gateway);
  const listed = new Set(intents.map((i) => i.id));
  intents.push(...(await readRecordedIntents(gateway, database.payments, listed)));
  database.payments.push(...(await readNamedPayments(client, intents, database.payments, scope)));
  return { intents, ...database };
}

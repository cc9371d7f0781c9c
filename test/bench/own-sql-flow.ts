import { randomBytes, randomUUID } from 'node:crypto';
import { CYCLE_VARIABLES } from '../support/bench/minimal-sql';

/*
 * The flow as the API sent it when traced (log_statement, one booking: hold, idempotency claim,
 * payment insert, authorize, fenced confirm, capture, idempotency answer, webhook), statement for
 * statement: the "own-SQL replay" ceiling of flow.bench.ts, kept beside the physical limit
 * (MINIMAL_FLOW_SCRIPT) so a reader sees both. It changes whenever the app's flow SQL changes.
 */
const PRICE_CENTS = 4_200;
const PAYMENT_METHOD = 'pm_card_visa';

/** The transactions one booking of the replay commits. */
export const OWN_SQL_FLOW_TRANSACTIONS = 10;

const BOOKING = `lpad(to_hex(:bn::bigint), 32, '0')::uuid`;
const PAYMENT = `lpad(to_hex(:bn::bigint), 32, 'a')::uuid`;
const CUSTOMER = `lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid`;
const SEAT = `label = ANY(ARRAY['P' || :n])`;
const BOOKING_COLUMNS = `id, customer_id, event_id, status, seat_labels, amount_cents, currency,
  expires_at, fence, created_at`;
const PAYMENT_COLUMNS = `id, booking_id, customer_id, status, next_action, amount_cents,
  refunded_cents, currency, payment_method, fence, gateway_idempotency_key, gateway_intent_id,
  failure_code, failure_message, created_at`;

/**
 * The pgbench script: one booking per pgbench transaction, seat P<client_id * k + seq> of event
 * :ev (CYCLE_VARIABLES); the variables of ownSqlFlowVariables stand in for the values the app binds.
 */
export const OWN_SQL_FLOW_SCRIPT = String.raw`${CYCLE_VARIABLES}BEGIN;
UPDATE seats s SET status = 'free', booking_id = NULL, held_until = NULL
  FROM (SELECT label, booking_id FROM seats WHERE event_id = :ev AND ${SEAT} AND status = 'held'
          AND held_until <= now() FOR UPDATE) old
  WHERE s.event_id = :ev AND s.label = old.label RETURNING old.booking_id;
WITH token AS (SELECT COALESCE(NULL::bigint, greatest(max(fence) + 1,
                 (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)) AS value
               FROM seats WHERE event_id = :ev AND ${SEAT})
UPDATE seats s SET status = 'held', booking_id = ${BOOKING}, fence = token.value,
                   held_until = now() + make_interval(secs => 300)
  FROM token WHERE s.event_id = :ev AND s.${SEAT} AND s.status = 'free' AND s.fence < token.value
  RETURNING s.label, s.held_until, s.fence AS fence \gset
INSERT INTO bookings (id, customer_id, event_id, status, seat_labels, amount_cents, currency,
                      expires_at, fence)
  VALUES (${BOOKING}, ${CUSTOMER}, :ev, 'held', ARRAY['P' || :n], ${PRICE_CENTS}, 'EUR',
          now() + interval '300 seconds', :fence) RETURNING ${BOOKING_COLUMNS};
INSERT INTO booking_timeline (booking_id, type, detail) VALUES (${BOOKING}, 'booking.held', :heldtext);
INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  VALUES (gen_random_uuid(), 'booking.held', ${CUSTOMER}, ${BOOKING}, :payload);
COMMIT;
INSERT INTO idempotency_keys AS k (customer_id, key, fingerprint, state, locked_until, expires_at)
  VALUES (${CUSTOMER}, 'pgb-' || :bn, :fp, 'in_flight', now() + 50000 * interval '1 millisecond',
          now() + 24 * interval '1 hour')
  ON CONFLICT (customer_id, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', response_status = NULL,
        response_body = NULL, locked_until = EXCLUDED.locked_until,
        expires_at = EXCLUDED.expires_at, created_at = now()
    WHERE k.expires_at <= now()
       OR (k.state = 'in_flight' AND k.locked_until <= now() AND k.fingerprint = EXCLUDED.fingerprint)
  RETURNING 1;
SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = ${BOOKING} AND customer_id = ${CUSTOMER};
INSERT INTO payments (id, booking_id, customer_id, status, next_action, amount_cents, currency,
                      payment_method, fence, gateway_idempotency_key)
  VALUES (${PAYMENT}, ${BOOKING}, ${CUSTOMER}, 'pending', 'authorize', ${PRICE_CENTS}, 'EUR',
          '${PAYMENT_METHOD}', :fence, 'seatlock-pgb-' || :bn)
  ON CONFLICT (gateway_idempotency_key) DO UPDATE SET attempts = payments.attempts + 1
  RETURNING ${PAYMENT_COLUMNS};
BEGIN;
SELECT ${PAYMENT_COLUMNS} FROM payments WHERE id = ${PAYMENT} FOR UPDATE;
UPDATE payments SET status = 'authorized', next_action = 'confirm',
                    gateway_intent_id = 'pi_pgb_' || :bn, updated_at = clock_timestamp()
  WHERE id = ${PAYMENT} RETURNING ${PAYMENT_COLUMNS};
COMMIT;
BEGIN;
SELECT ${PAYMENT_COLUMNS} FROM payments WHERE id = ${PAYMENT} FOR UPDATE;
UPDATE bookings SET status = 'confirmed', updated_at = now()
  WHERE id = ${BOOKING} AND status = 'held' AND fence = :fence AND expires_at > now()
  RETURNING ${BOOKING_COLUMNS};
UPDATE seats SET status = 'booked', held_until = NULL
  WHERE event_id = :ev AND ${SEAT} AND booking_id = ${BOOKING} AND status = 'held' AND fence = :fence;
INSERT INTO booking_timeline (booking_id, type, detail)
  VALUES (${BOOKING}, 'booking.confirmed', :confirmedtext);
INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  VALUES (gen_random_uuid(), 'booking.confirmed', ${CUSTOMER}, ${BOOKING}, :payload);
UPDATE payments SET next_action = 'capture', updated_at = clock_timestamp()
  WHERE id = ${PAYMENT} RETURNING ${PAYMENT_COLUMNS};
COMMIT;
BEGIN;
SELECT ${PAYMENT_COLUMNS} FROM payments WHERE id = ${PAYMENT} FOR UPDATE;
UPDATE payments SET status = 'captured', next_action = NULL, updated_at = clock_timestamp()
  WHERE id = ${PAYMENT} RETURNING ${PAYMENT_COLUMNS};
COMMIT;
SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = ${BOOKING};
UPDATE idempotency_keys SET state = 'completed', response_status = 201, response_body = :answer
  WHERE customer_id = ${CUSTOMER} AND key = 'pgb-' || :bn;
BEGIN;
INSERT INTO gateway_events (id, type) VALUES ('evt_pgb_' || :bn, 'charge.captured')
  ON CONFLICT DO NOTHING RETURNING id;
SELECT ${PAYMENT_COLUMNS} FROM payments
  WHERE gateway_intent_id = 'pi_pgb_' || :bn
     OR (gateway_intent_id IS NULL AND id::text = ${PAYMENT}::text)
  LIMIT 1 FOR UPDATE;
COMMIT;
`;

/** The -D variables of the replay: bodies and texts of the sizes the app writes. */
export function ownSqlFlowVariables(): Record<string, string> {
  const now = new Date().toISOString();
  const token = '1795372520742939';
  const booking = {
    id: randomUUID(),
    seats: ['A1'],
    status: 'held',
    eventId: randomUUID(),
    currency: 'EUR',
    createdAt: now,
    expiresAt: now,
    amountCents: PRICE_CENTS,
    fencingToken: token,
  };
  const payment = {
    id: randomUUID(),
    bookingId: booking.id,
    status: 'captured',
    amountCents: PRICE_CENTS,
    refundedCents: 0,
    currency: 'EUR',
    paymentMethod: PAYMENT_METHOD,
    gatewayIntentId: 'pi_YXD2B0uySjbFhkEFkvNvuvJS',
    failureCode: null,
    failureMessage: null,
    createdAt: now,
  };
  return {
    fp: randomBytes(32).toString('hex'),
    payload: JSON.stringify({ booking }),
    answer: JSON.stringify({ payment, booking: { ...booking, status: 'confirmed' } }),
    heldtext: `Held A1 until ${now} (fencing token ${token})`,
    confirmedtext: `Paid (payment ${payment.id}); A1 booked`,
  };
}

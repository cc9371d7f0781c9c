/*
 * The least SQL PostgreSQL must commit for each state change, each change ONE statement, no
 * NOTIFY, as pgbench scripts: the API's rate divided by pgbench's rate of these shows what our own
 * SQL and code cost, not just the machine.
 *
 * pgbench -D variables: ev (an event from preparePgbench), k (seats per client), seq (0), runbase
 * (distinct per run: booking ids never repeat), fencebase (above every stored fence). Each cycle
 * takes seat P<client_id * k + seq>; the booking is lpad(:bn, '0'), its payment lpad(:bn, 'a'),
 * its customer lpad(:client_id + 1, 'c').
 */

export const HOLD_TTL_SECONDS = 300;

export const CYCLE_VARIABLES = String.raw`\set seq :seq + 1
\set n :client_id * :k + :seq
\set bn (:client_id + 1) * 1000000000 + :runbase + :seq
\set tok :fencebase + :bn
`;

/** The fenced conditional seat UPDATE, then the booking, its timeline entry and outbox row. */
const ONE_STATEMENT_HOLD = String.raw`WITH seat AS (
  UPDATE seats SET status = 'held', booking_id = lpad(to_hex(:bn::bigint), 32, '0')::uuid,
         fence = :tok::bigint, held_until = now() + interval '${HOLD_TTL_SECONDS} seconds'
   WHERE event_id = :ev AND label = 'P' || :n AND status = 'free' AND fence < :tok::bigint
  RETURNING label, price_cents
), booking AS (
  INSERT INTO bookings (id, customer_id, event_id, status, seat_labels, amount_cents, currency,
                        expires_at, fence)
  SELECT lpad(to_hex(:bn::bigint), 32, '0')::uuid, lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid,
         :ev, 'held', array_agg(label), sum(price_cents), 'EUR',
         now() + interval '${HOLD_TTL_SECONDS} seconds', :tok::bigint
    FROM seat HAVING count(*) > 0
  RETURNING id, customer_id, event_id, seat_labels, amount_cents, expires_at, fence
), timeline AS (
  INSERT INTO booking_timeline (booking_id, event_id, type, detail)
  SELECT id, event_id, 'booking.held', 'Held ' || array_to_string(seat_labels, ', ') FROM booking
), outbox AS (
  INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  SELECT gen_random_uuid(), 'booking.held', customer_id, id,
         jsonb_build_object('booking', jsonb_build_object('id', id, 'status', 'held',
           'seats', seat_labels, 'amountCents', amount_cents, 'currency', 'EUR',
           'expiresAt', expires_at, 'fencingToken', fence::text))
    FROM booking
)
SELECT id FROM booking;
`;

export const HOLD_SCRIPT = CYCLE_VARIABLES + ONE_STATEMENT_HOLD;

/* One booking (hold → pay → confirmed) is four such transactions: hold, payment, confirm, capture. */

/** The payment row once the gateway authorized, if the booking is still held and the customer's. */
const AUTHORIZED_PAYMENT = String.raw`INSERT INTO payments (id, booking_id, event_id, customer_id, status, next_action,
                      amount_cents, currency, payment_method, fence, gateway_idempotency_key,
                      gateway_intent_id)
SELECT lpad(to_hex(:bn::bigint), 32, 'a')::uuid, id, event_id, customer_id, 'authorized', 'confirm',
       amount_cents, currency, 'pm_card_visa', fence, 'seatlock-pgb-' || :bn, 'pi_pgb_' || :bn
  FROM bookings
 WHERE id = lpad(to_hex(:bn::bigint), 32, '0')::uuid
   AND customer_id = lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid AND status = 'held'
RETURNING id;
`;

/** The fence on booking and seats makes a late confirm (after an expiry and a new hold) a no-op. */
const FENCED_CONFIRM = String.raw`WITH booking AS (
  UPDATE bookings SET status = 'confirmed', updated_at = now()
   WHERE id = lpad(to_hex(:bn::bigint), 32, '0')::uuid AND status = 'held'
     AND fence = :tok::bigint AND expires_at > now()
  RETURNING id, customer_id, event_id, seat_labels, amount_cents, currency, fence
), seat AS (
  UPDATE seats s SET status = 'booked', held_until = NULL
    FROM booking b
   WHERE s.event_id = b.event_id AND s.label = ANY(b.seat_labels) AND s.booking_id = b.id
     AND s.status = 'held' AND s.fence = :tok::bigint
  RETURNING s.label
), timeline AS (
  INSERT INTO booking_timeline (booking_id, event_id, type, detail)
  SELECT id, event_id, 'booking.confirmed', 'Paid; ' || array_to_string(seat_labels, ', ') || ' booked'
    FROM booking
), outbox AS (
  INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  SELECT gen_random_uuid(), 'booking.confirmed', customer_id, id,
         jsonb_build_object('booking', jsonb_build_object('id', id, 'status', 'confirmed',
           'seats', seat_labels, 'amountCents', amount_cents, 'currency', currency,
           'fencingToken', fence::text))
    FROM booking
)
SELECT id, (SELECT count(*) FROM seat) AS booked FROM booking;
`;

const CAPTURE_RECORD = String.raw`WITH payment AS (
  UPDATE payments SET status = 'captured', next_action = NULL, updated_at = clock_timestamp()
   WHERE id = lpad(to_hex(:bn::bigint), 32, 'a')::uuid AND status = 'authorized'
  RETURNING id, booking_id, event_id, customer_id, amount_cents, currency, gateway_intent_id
), timeline AS (
  INSERT INTO booking_timeline (booking_id, event_id, type, detail)
  SELECT booking_id, event_id, 'payment.captured', 'Captured ' || amount_cents || ' ' || currency
    FROM payment
), outbox AS (
  INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  SELECT gen_random_uuid(), 'payment.captured', customer_id, booking_id,
         jsonb_build_object('payment', jsonb_build_object('id', id, 'bookingId', booking_id,
           'status', 'captured', 'amountCents', amount_cents, 'currency', currency,
           'gatewayIntentId', gateway_intent_id))
    FROM payment
)
SELECT id FROM payment;
`;

export const MINIMAL_FLOW_SCRIPT =
  CYCLE_VARIABLES + ONE_STATEMENT_HOLD + AUTHORIZED_PAYMENT + FENCED_CONFIRM + CAPTURE_RECORD;

/** Outbox messages one pgbench transaction of OUTBOX_SCRIPT sends. */
export const OUTBOX_CLAIM_BATCH = 100;

/**
 * The least SQL that takes a batch of outbox messages from pending to sent, one statement each:
 * claim OUTBOX_CLAIM_BATCH due messages (SKIP LOCKED, a lease), returning them as a dispatcher needs
 * them; mark them sent. Messages/s = tps × OUTBOX_CLAIM_BATCH.
 */
export const OUTBOX_SCRIPT = String.raw`WITH claimed AS (
  UPDATE outbox_messages SET claimed_by = lpad(to_hex(:client_id::bigint + 1), 32, 'b')::uuid,
         claimed_until = now() + interval '30 seconds'
   WHERE id IN (SELECT id FROM outbox_messages
                 WHERE status = 'pending' AND available_at <= now()
                   AND (claimed_until IS NULL OR claimed_until <= now())
                 ORDER BY available_at LIMIT ${OUTBOX_CLAIM_BATCH} FOR UPDATE SKIP LOCKED)
  RETURNING id, topic, customer_id, aggregate_id, payload, attempts, created_at
) SELECT array_agg(id) AS ids, json_agg(claimed) AS messages FROM claimed \gset
UPDATE outbox_messages SET status = 'sent', dispatched_at = now(), dispatched_by = 'pgbench',
       claimed_by = NULL, claimed_until = NULL
 WHERE id = ANY (:ids::uuid[]);
`;

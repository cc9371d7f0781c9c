/*
 * The physical limit of our durable work, as pgbench scripts: the least SQL PostgreSQL must commit
 * for a state change, each change ONE statement, no NOTIFY. A benchmark divides the API's rate by
 * pgbench's rate of these, so the ratio shows what our own SQL and code cost, not just the machine.
 *
 * Variables (pgbench -D): ev (an event made by preparePgbench), k (seats per client), seq (0; it
 * counts per client), runbase (distinct per run, so booking ids never repeat), fencebase (a fence
 * above every stored one). Each cycle takes seat P<client_id * k + seq> of its own; the script
 * leaves :bn (the booking number) and :book (its uuid) set for statements that follow.
 */

export const HOLD_TTL_SECONDS = 300;

/** Advances the per-client counter and names this cycle's seat, booking and fencing token. */
export const CYCLE_VARIABLES = String.raw`\set seq :seq + 1
\set n :client_id * :k + :seq
\set bn (:client_id + 1) * 1000000000 + :runbase + :seq
\set tok :fencebase + :bn
`;

/**
 * One hold in one statement: the fenced conditional seat UPDATE, then the booking, its timeline
 * entry and its outbox row, all written from the seat rows the UPDATE returned. One seat per cycle
 * here, so "every seat or nothing" needs no extra check.
 */
export const ONE_STATEMENT_HOLD = String.raw`WITH seat AS (
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
  RETURNING id, customer_id, seat_labels, amount_cents, expires_at, fence
), timeline AS (
  INSERT INTO booking_timeline (booking_id, type, detail)
  SELECT id, 'booking.held', 'Held ' || array_to_string(seat_labels, ', ') FROM booking
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

/** The pgbench script of the one-statement hold: one hold per transaction. */
export const HOLD_SCRIPT = CYCLE_VARIABLES + ONE_STATEMENT_HOLD;

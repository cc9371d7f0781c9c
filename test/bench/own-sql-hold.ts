import { randomUUID } from 'node:crypto';
import { CYCLE_VARIABLES, HOLD_TTL_SECONDS } from '../support/bench/minimal-sql';

/*
 * Today's hold as the API sends it, statement for statement (traced with log_statement = 'all' on
 * the running app): START TRANSACTION, the inline expiry of the requested seats, the fenced
 * conditional seat UPDATE with the Redis token, the booking INSERT, the timeline INSERT, the outbox
 * INSERT with its pg_notify, COMMIT. This is OUR design replayed, kept beside the physical limit
 * (minimal-sql.ts) so a reader sees both; it changes whenever the app's hold SQL changes.
 */
const PRICE_CENTS = 5_000;

export const OWN_SQL_HOLD_SCRIPT =
  CYCLE_VARIABLES +
  String.raw`START TRANSACTION;
UPDATE seats s SET status = 'free', booking_id = NULL, held_until = NULL
  FROM (SELECT label, booking_id FROM seats
        WHERE event_id = :ev AND label = ANY(ARRAY['P' || :n]) AND status = 'held' AND held_until <= now()
        FOR UPDATE) old
  WHERE s.event_id = :ev AND s.label = old.label
  RETURNING old.booking_id;
WITH token AS (
  SELECT COALESCE(:tok::bigint, greatest(max(fence) + 1,
           (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)) AS value
  FROM seats WHERE event_id = :ev AND label = ANY(ARRAY['P' || :n]))
UPDATE seats s
  SET status = 'held', booking_id = lpad(to_hex(:bn::bigint), 32, '0')::uuid, fence = token.value,
      held_until = now() + make_interval(secs => ${HOLD_TTL_SECONDS})
  FROM token
  WHERE s.event_id = :ev AND s.label = ANY(ARRAY['P' || :n]) AND s.status = 'free' AND s.fence < token.value
  RETURNING s.label, s.held_until, s.fence AS fence \gset
INSERT INTO bookings (id, customer_id, event_id, status, seat_labels, amount_cents, currency, expires_at, fence)
  VALUES (lpad(to_hex(:bn::bigint), 32, '0')::uuid, lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid,
          :ev, 'held', ARRAY['P' || :n], ${PRICE_CENTS}, 'EUR', now() + interval '${HOLD_TTL_SECONDS} seconds', :fence)
  RETURNING id, customer_id, event_id, status, seat_labels, amount_cents, currency, expires_at, fence, created_at;
INSERT INTO booking_timeline (booking_id, type, detail)
  VALUES (lpad(to_hex(:bn::bigint), 32, '0')::uuid, 'booking.held', :heldtext);
WITH inserted AS (
  INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  VALUES (gen_random_uuid(), 'booking.held', lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid,
          lpad(to_hex(:bn::bigint), 32, '0')::uuid, :payload) RETURNING id
)
SELECT pg_notify('outbox', '') FROM inserted;
COMMIT;
`;

/** The -D variables of the own-SQL script: a realistic booking payload and timeline text. */
export function ownSqlHoldVariables(eventId: string): Record<string, string> {
  const now = new Date().toISOString();
  const booking = {
    id: randomUUID(),
    seats: ['A1'],
    status: 'held',
    eventId,
    currency: 'EUR',
    createdAt: now,
    expiresAt: now,
    amountCents: PRICE_CENTS,
    fencingToken: '1795372520742939',
  };
  return {
    payload: JSON.stringify({ booking }),
    heldtext: `Held A1 until ${now} (fencing token 1795372520742939)`,
  };
}

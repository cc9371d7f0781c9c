import { CYCLE_VARIABLES, HOLD_TTL_SECONDS } from '../support/bench/minimal-sql';

/*
 * Today's hold as the API sends it: one call of seatlock_hold
 * (apps/api/src/database/functions/40-seatlock_hold.function.sql), which locks the requested seats,
 * expires their lapsed holds, checks them free and older than the token, and writes seats, booking,
 * timeline and outbox row (test/statement-count.e2e-spec.ts counts it on the wire). The
 * per-customer cap and the orphan rule are left off here (their arguments' defaults), as on an
 * event without them. This is OUR design replayed, kept beside the physical limit (minimal-sql.ts)
 * so a reader sees what our function costs beyond the one-statement CTE; it changes whenever the
 * app's hold SQL changes.
 */

/** The price of the seats the hold ceilings prepare, which the replay passes as the amount. */
export const HOLD_PRICE_CENTS = 5_000;

export const OWN_SQL_HOLD_SCRIPT =
  CYCLE_VARIABLES +
  String.raw`SELECT outcome, booking, taken, newest_fence, expired
  FROM seatlock_hold(lpad(to_hex(:bn::bigint), 32, '0')::uuid,
                     lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid, :ev,
                     ARRAY['P' || :n], ${HOLD_PRICE_CENTS}, 'EUR', :tok, ${HOLD_TTL_SECONDS});
`;

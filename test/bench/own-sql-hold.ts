import { CYCLE_VARIABLES, HOLD_TTL_SECONDS } from '../support/bench/minimal-sql';

/*
 * Today's hold as the API sends it: one call of seatlock_hold (40-seatlock_hold.function.sql;
 * test/statement-count.e2e-spec.ts counts it on the wire), without the per-customer cap and the
 * orphan rule, as on an event without them. OUR design replayed beside the physical limit
 * (minimal-sql.ts): it changes whenever the app's hold SQL changes.
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

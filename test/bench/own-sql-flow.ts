import { randomBytes, randomUUID } from 'node:crypto';
import { CYCLE_VARIABLES } from '../support/bench/minimal-sql';

/*
 * The flow as the API sends it, statement for statement (the hold, the payment's start, the fenced
 * confirm with the authorization, the capture with the stored answer; our own capture's webhooks
 * cost none): flow.bench.ts's "own-SQL replay", beside the physical limit (MINIMAL_FLOW_SCRIPT).
 * It changes whenever the app's flow SQL changes (test/statement-count.e2e-spec.ts).
 */
/** What the flow benchmark's seats cost and its customers pay with, replayed here alike. */
export const FLOW_PRICE_CENTS = 4_200;
export const FLOW_PAYMENT_METHOD = 'pm_card_visa';

/** The transactions one booking of the replay commits. */
export const OWN_SQL_FLOW_TRANSACTIONS = 4;

const BOOKING = `lpad(to_hex(:bn::bigint), 32, '0')::uuid`;
const PAYMENT = `lpad(to_hex(:bn::bigint), 32, 'a')::uuid`;
const CUSTOMER = `lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid`;

/**
 * The pgbench script: one booking per pgbench transaction, seat P<client_id * k + seq> of event
 * :ev (CYCLE_VARIABLES), the Redis token :tok; the variables of ownSqlFlowVariables stand in for
 * the values the app binds. The capture's version is read inside its statement (the app binds
 * the one the confirm returned).
 */
export const OWN_SQL_FLOW_SCRIPT = String.raw`${CYCLE_VARIABLES}SELECT outcome, booking, taken, newest_fence, expired
  FROM seatlock_hold(${BOOKING}, ${CUSTOMER}, :ev, ARRAY['P' || :n], ${FLOW_PRICE_CENTS}, 'EUR', :tok, 300);
SELECT claim, response_status, response_body, booking, booking_status, payment
  FROM seatlock_payment_start(${CUSTOMER}, ${BOOKING}, 'pgb-' || :bn, :fp, 50000, 24, ${PAYMENT},
                              '${FLOW_PAYMENT_METHOD}', 'seatlock-pgb-' || :bn);
SELECT outcome, payment, booking
  FROM seatlock_payment_confirm(${PAYMENT}, 'authorize', 'authorized', 'pi_pgb_' || :bn);
WITH p AS (UPDATE payments SET status = 'captured', next_action = NULL, updated_at = clock_timestamp()
             WHERE id = ${PAYMENT}
               AND updated_at = (SELECT updated_at FROM payments WHERE id = ${PAYMENT}) RETURNING *),
     a AS (SELECT seatlock_idempotency_complete(${CUSTOMER}, 'pgb-' || :bn, 201, :answer) AS done
             FROM p)
SELECT seatlock_payment_row(p) AS row, (SELECT bool_or(done) FROM a) AS answered FROM p;
`;

/** The -D variables of the replay: bodies and texts of the sizes the app writes. */
export function ownSqlFlowVariables(): Record<string, string> {
  const [now, amountCents, currency] = [new Date().toISOString(), FLOW_PRICE_CENTS, 'EUR'];
  const booking = {
    ...{ id: randomUUID(), seats: ['A1'], status: 'held', eventId: randomUUID(), currency },
    ...{ createdAt: now, expiresAt: now, amountCents, fencingToken: '1795372520742939' },
  };
  const payment = {
    ...{ id: randomUUID(), bookingId: booking.id, status: 'captured', amountCents },
    ...{ refundedCents: 0, currency, paymentMethod: FLOW_PAYMENT_METHOD },
    ...{ gatewayIntentId: 'pi_YXD2B0uySjbFhkEFkvNvuvJS', failureCode: null, failureMessage: null },
    createdAt: now,
  };
  return {
    fp: randomBytes(32).toString('hex'),
    answer: JSON.stringify({ payment, booking: { ...booking, status: 'confirmed' } }),
  };
}

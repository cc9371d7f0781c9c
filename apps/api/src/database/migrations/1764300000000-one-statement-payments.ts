import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The fenced confirm; superseded by 1765000000000, kept for its down(). */
export const PAYMENT_CONFIRM_V1_SQL = `
      CREATE FUNCTION seatlock_payment_confirm(
        p_payment uuid, p_expected text, p_status text, p_intent text)
      RETURNS TABLE (outcome text, payment jsonb, booking jsonb)
      LANGUAGE plpgsql AS $$
      DECLARE
        p payments;
        b bookings;
        v_status text;
        v_booked integer;
        v_reason text;
      BEGIN
        SELECT * INTO p FROM payments WHERE id = p_payment FOR UPDATE;
        IF p.next_action IS DISTINCT FROM p_expected THEN
          RETURN QUERY SELECT 'moved_on', seatlock_payment_row(p), NULL::jsonb;
          RETURN;
        END IF;
        v_status := COALESCE(p_status, p.status);
        UPDATE bookings SET status = 'confirmed', updated_at = now()
         WHERE id = p.booking_id AND status = 'held' AND fence = p.fence AND expires_at > now()
        RETURNING * INTO b;
        IF FOUND THEN
          UPDATE seats SET status = 'booked', held_until = NULL
           WHERE event_id = b.event_id AND label = ANY(b.seat_labels) AND booking_id = b.id
             AND status = 'held' AND fence = p.fence;
          GET DIAGNOSTICS v_booked = ROW_COUNT;
          IF v_booked <> cardinality(b.seat_labels) THEN
            -- A held booking whose seats are not all held by it: book none of it.
            RAISE EXCEPTION 'booking % is held but only % of % seats carry its fence',
              b.id, v_booked, cardinality(b.seat_labels);
          END IF;
          PERFORM seatlock_record_booking_event(b, 'booking.confirmed',
            'Paid (payment ' || p.id || '); ' || array_to_string(b.seat_labels, ', ') || ' booked');
          UPDATE payments
             SET status = v_status, gateway_intent_id = COALESCE(p_intent, gateway_intent_id),
                 next_action = CASE WHEN v_status = 'captured' THEN NULL ELSE 'capture' END,
                 updated_at = clock_timestamp()
           WHERE id = p.id RETURNING * INTO p;
          RETURN QUERY SELECT 'confirmed', seatlock_payment_row(p), seatlock_booking_json(b);
          RETURN;
        END IF;
        b := seatlock_expire_booking(p.booking_id);
        IF b.id IS NULL THEN
          SELECT * INTO b FROM bookings WHERE id = p.booking_id;
        END IF;
        v_reason := CASE b.status
          WHEN 'expired' THEN 'the hold lapsed at ' || seatlock_iso(b.expires_at)
            || ' before the payment completed, so the seats were no longer this booking''s'
          WHEN 'released' THEN 'the booking was released before the payment completed'
          WHEN 'cancelled' THEN 'the booking was cancelled before the payment completed'
          WHEN 'confirmed' THEN 'the booking had already been paid by another payment'
          ELSE 'the booking is ' || b.status END;
        UPDATE payments
           SET status = v_status, gateway_intent_id = COALESCE(p_intent, gateway_intent_id),
               next_action = CASE WHEN v_status = 'captured' THEN 'refund' ELSE 'void' END,
               failure_code = 'seat_lost', failure_message = 'Not booked: ' || v_reason,
               updated_at = clock_timestamp()
         WHERE id = p.id RETURNING * INTO p;
        RETURN QUERY SELECT 'seat_lost', seatlock_payment_row(p), seatlock_booking_json(b);
      END
      $$`;

/**
 * Every booking and payment state change in one statement. Each function below is one module's
 * published write, called by that module's repository (or by another module's statement, as a
 * facade is called): the timeline and outbox rows of a change are written by
 * `seatlock_record_booking_event`, whichever statement makes the change, so they commit with it.
 */
export class OneStatementPayments1764300000000 implements MigrationInterface {
  name = 'OneStatementPayments1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION seatlock_iso(t timestamptz) RETURNS text
      LANGUAGE sql IMMUTABLE AS $$
        SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      $$`);

    // The notification module's one way in: an outbox message, written in the caller's statement.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_outbox_enqueue(
        p_topic text, p_customer uuid, p_aggregate uuid, p_payload jsonb)
      RETURNS void LANGUAGE sql AS $$
        INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
        VALUES (gen_random_uuid(), p_topic, p_customer, p_aggregate, p_payload)
      $$`);

    // A fact about a booking: its timeline entry and its outbox message (the booking as the API
    // shows it, plus \`extra\`), written together in the caller's statement.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_record_booking_event(
        b bookings, p_type text, p_detail text, p_extra jsonb DEFAULT '{}')
      RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO booking_timeline (booking_id, type, detail) VALUES (b.id, p_type, p_detail);
        PERFORM seatlock_outbox_enqueue(p_type, b.customer_id, b.id,
                  jsonb_build_object('booking', seatlock_booking_json(b)) || p_extra);
      END
      $$`);

    // held -> expired once the TTL has passed; frees the seats it still holds by fence. Answers the
    // expired booking, or NULL when it was not a lapsed hold.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_expire_booking(p_booking uuid) RETURNS bookings
      LANGUAGE plpgsql AS $$
      DECLARE
        v bookings;
      BEGIN
        UPDATE bookings SET status = 'expired', updated_at = now()
         WHERE id = p_booking AND status = 'held' AND expires_at <= now()
        RETURNING * INTO v;
        IF NOT FOUND THEN
          RETURN NULL;
        END IF;
        UPDATE seats SET status = 'free', booking_id = NULL, held_until = NULL
         WHERE event_id = v.event_id AND label = ANY(v.seat_labels) AND status = 'held'
           AND fence = v.fence;
        PERFORM seatlock_record_booking_event(v, 'booking.expired',
          'Hold lapsed at ' || seatlock_iso(v.expires_at) || '; '
          || array_to_string(v.seat_labels, ', ') || ' free again');
        RETURN v;
      END
      $$`);

    // The customer's DELETE of a hold. outcome: 'not_found' (not this customer's), 'released',
    // 'expired' (it had lapsed), 'unchanged' (already over), 'confirmed' (a paid booking: its
    // cancellation involves the payment and runs as its own transaction). booking: as the API shows it.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_release(p_booking uuid, p_customer uuid)
      RETURNS TABLE (outcome text, booking jsonb)
      LANGUAGE plpgsql AS $$
      DECLARE
        v bookings;
        v_expired bookings;
      BEGIN
        SELECT * INTO v FROM bookings WHERE id = p_booking AND customer_id = p_customer FOR UPDATE;
        IF NOT FOUND THEN
          RETURN QUERY SELECT 'not_found', NULL::jsonb;
          RETURN;
        END IF;
        IF v.status <> 'held' THEN
          RETURN QUERY SELECT CASE v.status WHEN 'confirmed' THEN 'confirmed' ELSE 'unchanged' END,
                              seatlock_booking_json(v);
          RETURN;
        END IF;
        v_expired := seatlock_expire_booking(p_booking);
        IF v_expired.id IS NOT NULL THEN
          RETURN QUERY SELECT 'expired', seatlock_booking_json(v_expired);
          RETURN;
        END IF;
        UPDATE bookings SET status = 'released', updated_at = now()
         WHERE id = p_booking AND status = 'held' RETURNING * INTO v;
        UPDATE seats SET status = 'free', booking_id = NULL, held_until = NULL
         WHERE event_id = v.event_id AND label = ANY(v.seat_labels) AND status = 'held'
           AND fence = v.fence;
        PERFORM seatlock_record_booking_event(v, 'booking.released',
          'Released by the customer; ' || array_to_string(v.seat_labels, ', ') || ' free again');
        RETURN QUERY SELECT 'released', seatlock_booking_json(v);
      END
      $$`);

    // Claims an idempotency key, or says why not: 'claimed', 'completed' (with the stored answer),
    // 'in_flight', 'mismatch' (the key was used for another request). The lookup after a lost
    // INSERT runs with a new snapshot, so it sees the row a concurrent claim just committed.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_idempotency_claim(
        p_customer uuid, p_key text, p_fingerprint text, p_lease_ms integer,
        p_retention_hours integer)
      RETURNS TABLE (outcome text, response_status integer, response_body text)
      LANGUAGE plpgsql AS $$
      DECLARE
        v idempotency_keys;
      BEGIN
        INSERT INTO idempotency_keys AS k
          (customer_id, key, fingerprint, state, locked_until, expires_at)
        VALUES (p_customer, p_key, p_fingerprint, 'in_flight',
                now() + p_lease_ms * interval '1 millisecond',
                now() + p_retention_hours * interval '1 hour')
        ON CONFLICT (customer_id, key) DO UPDATE
          SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', response_status = NULL,
              response_body = NULL, locked_until = EXCLUDED.locked_until,
              expires_at = EXCLUDED.expires_at, created_at = now()
          WHERE k.expires_at <= now()
             OR (k.state = 'in_flight' AND k.locked_until <= now()
                 AND k.fingerprint = EXCLUDED.fingerprint);
        IF FOUND THEN
          RETURN QUERY SELECT 'claimed', NULL::integer, NULL::text;
          RETURN;
        END IF;
        SELECT * INTO v FROM idempotency_keys WHERE customer_id = p_customer AND key = p_key;
        IF NOT FOUND OR v.state = 'in_flight' AND v.fingerprint = p_fingerprint THEN
          -- Gone between the two statements (purged) counts as in flight: the client retries.
          RETURN QUERY SELECT 'in_flight', NULL::integer, NULL::text;
        ELSIF v.fingerprint <> p_fingerprint THEN
          RETURN QUERY SELECT 'mismatch', NULL::integer, NULL::text;
        ELSE
          RETURN QUERY SELECT 'completed', v.response_status, v.response_body;
        END IF;
      END
      $$`);

    // Stores a claimed request's answer; false when the claim is no longer this request's.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_idempotency_complete(
        p_customer uuid, p_key text, p_status integer, p_body text)
      RETURNS boolean LANGUAGE sql AS $$
        WITH done AS (
          UPDATE idempotency_keys SET state = 'completed', response_status = p_status,
                                      response_body = p_body
           WHERE customer_id = p_customer AND key = p_key AND state = 'in_flight'
          RETURNING 1)
        SELECT EXISTS (SELECT 1 FROM done)
      $$`);

    // A payment row as the payment repository reads it: amounts and the fence as decimal strings
    // (64-bit), updated_at with its microseconds (the version a conditional step compares).
    await queryRunner.query(`
      CREATE FUNCTION seatlock_payment_row(p payments) RETURNS jsonb
      LANGUAGE sql STABLE AS $$
        SELECT to_jsonb(p) || jsonb_build_object(
          'amount_cents', p.amount_cents::text, 'refunded_cents', p.refunded_cents::text,
          'fence', p.fence::text, 'created_at', seatlock_iso(p.created_at),
          'updated_at', p.updated_at::text)
      $$`);

    // POST /bookings/{id}/payments, first statement: claim the idempotency key, check the booking is
    // this customer's and payable, and create the payment (or resume it: same gateway key).
    // claim: as seatlock_idempotency_claim; booking NULL: not this customer's; payable false: the
    // booking is not held (booking_status says what it is); else payment is the row.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_payment_start(
        p_customer uuid, p_booking uuid, p_key text, p_fingerprint text, p_lease_ms integer,
        p_retention_hours integer, p_payment uuid, p_method text, p_gateway_key text)
      RETURNS TABLE (claim text, response_status integer, response_body text, booking jsonb,
                     booking_status text, payment jsonb)
      LANGUAGE plpgsql AS $$
      DECLARE
        c record;
        b bookings;
        p payments;
      BEGIN
        SELECT * INTO c FROM seatlock_idempotency_claim(p_customer, p_key, p_fingerprint,
                                                        p_lease_ms, p_retention_hours);
        IF c.outcome <> 'claimed' THEN
          RETURN QUERY SELECT c.outcome, c.response_status, c.response_body, NULL::jsonb,
                              NULL::text, NULL::jsonb;
          RETURN;
        END IF;
        SELECT * INTO b FROM bookings WHERE id = p_booking AND customer_id = p_customer;
        IF NOT FOUND THEN
          RETURN QUERY SELECT 'claimed', NULL::integer, NULL::text, NULL::jsonb, NULL::text,
                              NULL::jsonb;
          RETURN;
        END IF;
        IF b.status <> 'held' OR b.expires_at <= now() THEN
          RETURN QUERY SELECT 'claimed', NULL::integer, NULL::text, seatlock_booking_json(b),
                              CASE WHEN b.status = 'held' THEN 'expired' ELSE b.status END,
                              NULL::jsonb;
          RETURN;
        END IF;
        INSERT INTO payments (id, booking_id, customer_id, status, next_action, amount_cents,
                              currency, payment_method, fence, gateway_idempotency_key)
        VALUES (p_payment, b.id, b.customer_id, 'pending', 'authorize', b.amount_cents,
                b.currency, p_method, b.fence, p_gateway_key)
        ON CONFLICT (gateway_idempotency_key) DO UPDATE SET attempts = payments.attempts + 1
        RETURNING * INTO p;
        RETURN QUERY SELECT 'claimed', NULL::integer, NULL::text, seatlock_booking_json(b),
                            b.status, seatlock_payment_row(p);
      END
      $$`);

    // The fenced confirm, with the authorization that led to it recorded in the same statement
    // (p_status/p_intent, when given). Only while the payment's next step is still p_expected:
    // otherwise outcome 'moved_on' and nothing changes. 'confirmed': booking, seats, timeline and
    // outbox written, the payment owes its capture. 'seat_lost': the hold is gone (a lapsed one
    // is expired here), the payment owes a void or a refund and says why.
    await queryRunner.query(PAYMENT_CONFIRM_V1_SQL);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const fn of [
      'seatlock_payment_confirm',
      'seatlock_payment_start',
      'seatlock_payment_row',
      'seatlock_idempotency_complete',
      'seatlock_idempotency_claim',
      'seatlock_release',
      'seatlock_expire_booking',
      'seatlock_record_booking_event',
      'seatlock_outbox_enqueue',
      'seatlock_iso',
    ]) {
      await queryRunner.query(`DROP FUNCTION IF EXISTS ${fn}`);
    }
  }
}

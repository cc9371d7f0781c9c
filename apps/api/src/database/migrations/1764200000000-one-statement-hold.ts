import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The hold as one statement: `SELECT * FROM seatlock_hold(...)` does in one round trip (and one
 * implicit transaction) what used to take seven: lock the requested seats, expire the lapsed holds
 * on them, check every seat is free and the token newer than every stored fence, then write the
 * seats, the booking, its timeline entry and its outbox row — all of it or nothing. No NOTIFY: the
 * instance that wrote the hold wakes its own dispatcher after the statement returns.
 */
/** The first one-statement hold; 1764400000000 replaced it (its down restores this one). */
export const HOLD_V1_SQL = `
      CREATE FUNCTION seatlock_hold(
        p_booking uuid, p_customer uuid, p_event uuid, p_labels text[], p_amount bigint,
        p_currency text, p_fence bigint, p_ttl_seconds integer)
      RETURNS TABLE (outcome text, booking jsonb, taken text[], newest_fence bigint, expired integer)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_lapsed bookings;
        v_expired integer := 0;
        v_taken text[];
        v_newest bigint;
        v_token bigint;
        v_written integer;
        v_booking bookings;
        v_iso text;
      BEGIN
        -- Label order: two holds over overlapping seats lock them in the same order, no deadlock.
        PERFORM 1 FROM seats WHERE event_id = p_event AND label = ANY(p_labels)
          ORDER BY label FOR UPDATE;

        -- Lapsed holds on these seats end here, as the sweeper would end them.
        FOR v_lapsed IN
          UPDATE bookings SET status = 'expired', updated_at = now()
           WHERE status = 'held' AND expires_at <= now()
             AND id IN (SELECT booking_id FROM seats WHERE event_id = p_event
                          AND label = ANY(p_labels) AND status = 'held' AND held_until <= now())
          RETURNING *
        LOOP
          UPDATE seats SET status = 'free', booking_id = NULL, held_until = NULL
           WHERE event_id = v_lapsed.event_id AND label = ANY(v_lapsed.seat_labels)
             AND status = 'held' AND fence = v_lapsed.fence;
          v_iso := to_char(v_lapsed.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
          INSERT INTO booking_timeline (booking_id, type, detail)
          VALUES (v_lapsed.id, 'booking.expired', 'Hold lapsed at ' || v_iso || '; '
                  || array_to_string(v_lapsed.seat_labels, ', ') || ' free again');
          INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
          VALUES (gen_random_uuid(), 'booking.expired', v_lapsed.customer_id, v_lapsed.id,
                  jsonb_build_object('booking', seatlock_booking_json(v_lapsed)));
          v_expired := v_expired + 1;
        END LOOP;
        -- A lapsed seat whose booking is no longer held (e.g. already expired) is simply free.
        UPDATE seats SET status = 'free', booking_id = NULL, held_until = NULL
         WHERE event_id = p_event AND label = ANY(p_labels) AND status = 'held'
           AND held_until <= now();

        SELECT array_agg(label ORDER BY label) FILTER (WHERE status <> 'free'), max(fence)
          INTO v_taken, v_newest
          FROM seats WHERE event_id = p_event AND label = ANY(p_labels);
        IF v_taken IS NOT NULL THEN
          RETURN QUERY SELECT 'unavailable', NULL::jsonb, v_taken, v_newest, v_expired;
          RETURN;
        END IF;
        -- Without a Redis token PostgreSQL mints one: above every fence here and the clock in µs.
        v_token := COALESCE(p_fence, greatest(v_newest + 1,
                     (extract(epoch FROM clock_timestamp()) * 1000000)::bigint));
        IF v_token <= v_newest THEN
          RETURN QUERY SELECT 'stale', NULL::jsonb, NULL::text[], v_newest, v_expired;
          RETURN;
        END IF;

        UPDATE seats SET status = 'held', booking_id = p_booking, fence = v_token,
                         held_until = now() + make_interval(secs => p_ttl_seconds)
         WHERE event_id = p_event AND label = ANY(p_labels) AND status = 'free'
           AND fence < v_token;
        GET DIAGNOSTICS v_written = ROW_COUNT;
        IF v_written <> cardinality(p_labels) THEN
          -- Cannot happen under the row locks above; if it does, nothing of this hold survives.
          RAISE EXCEPTION 'seatlock_hold: % of % seats written', v_written, cardinality(p_labels);
        END IF;
        INSERT INTO bookings (id, customer_id, event_id, status, seat_labels, amount_cents,
                              currency, expires_at, fence)
        VALUES (p_booking, p_customer, p_event, 'held', p_labels, p_amount, p_currency,
                now() + make_interval(secs => p_ttl_seconds), v_token)
        RETURNING * INTO v_booking;
        v_iso := to_char(v_booking.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
        INSERT INTO booking_timeline (booking_id, type, detail)
        VALUES (p_booking, 'booking.held', 'Held ' || array_to_string(p_labels, ', ') || ' until '
                || v_iso || ' (fencing token ' || v_token || ')');
        INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
        VALUES (gen_random_uuid(), 'booking.held', p_customer, p_booking,
                jsonb_build_object('booking', seatlock_booking_json(v_booking)));
        RETURN QUERY SELECT 'held', seatlock_booking_json(v_booking), NULL::text[], v_token,
                            v_expired;
      END
      $$`;

export class OneStatementHold1764200000000 implements MigrationInterface {
  name = 'OneStatementHold1764200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // A booking as the API shows it (BookingDto), for outbox payloads written inside SQL.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_booking_json(b bookings) RETURNS jsonb
      LANGUAGE sql STABLE AS $$
        SELECT jsonb_build_object(
          'id', b.id, 'status', b.status, 'eventId', b.event_id, 'seats', to_jsonb(b.seat_labels),
          'amountCents', b.amount_cents, 'currency', b.currency,
          'expiresAt', to_char(b.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'fencingToken', b.fence::text,
          'createdAt', to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
      $$`);

    // outcome: 'held' (booking set), 'unavailable' (taken: the seats held or booked by others),
    // 'stale' (newest_fence: PostgreSQL holds a fence at least as new as the token; nothing written).
    await queryRunner.query(HOLD_V1_SQL);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_hold`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_booking_json`);
  }
}

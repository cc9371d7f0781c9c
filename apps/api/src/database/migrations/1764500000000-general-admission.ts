import type { MigrationInterface, QueryRunner } from 'typeorm';

// Holds p_quantity units of a GA section, all or none. outcome: 'held' (booking set),
// 'sold_out' (available: what was free), 'limit' (current: the customer's seats for the event).
// The token is PostgreSQL's own: units have no Redis lock (Redis only admits buyers).
// Superseded by 1764600000000 (fair claims); kept for its down().
export const HOLD_UNITS_V1_SQL = `
      CREATE FUNCTION seatlock_hold_units(
        p_booking uuid, p_customer uuid, p_event uuid, p_section text, p_quantity integer,
        p_price bigint, p_currency text, p_ttl_seconds integer, p_cap integer)
      RETURNS TABLE (outcome text, booking jsonb, available integer, current_seats integer,
                     expired integer)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_labels text[];
        v_lapsed uuid;
        v_expired integer := 0;
        v_current integer;
        v_token bigint;
        v_written integer;
        v_booking bookings;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_customer::text || p_event::text, 0));
        SELECT coalesce(sum(cardinality(seat_labels)), 0)::int INTO v_current FROM bookings
         WHERE customer_id = p_customer AND event_id = p_event
           AND status IN ('held', 'confirmed')
           AND NOT (status = 'held' AND expires_at <= now());
        IF v_current + p_quantity > p_cap THEN
          RETURN QUERY SELECT 'limit', NULL::jsonb, NULL::int, v_current, v_expired;
          RETURN;
        END IF;

        FOR attempt IN 1..2 LOOP
          -- Units other buyers are claiming right now are skipped, not waited for.
          SELECT array_agg(label ORDER BY position) INTO v_labels FROM (
            SELECT label, position FROM seats
             WHERE event_id = p_event AND section = p_section AND row_name IS NULL
               AND status = 'free'
             ORDER BY position LIMIT p_quantity FOR UPDATE SKIP LOCKED) u;
          EXIT WHEN coalesce(cardinality(v_labels), 0) = p_quantity OR attempt = 2;
          -- Too few free: end lapsed holds in this section (as the sweeper would), then look again.
          FOR v_lapsed IN
            SELECT DISTINCT booking_id FROM (
              SELECT booking_id FROM seats
               WHERE event_id = p_event AND section = p_section AND row_name IS NULL
                 AND status = 'held' AND held_until <= now()
               ORDER BY held_until LIMIT p_quantity FOR UPDATE SKIP LOCKED) l
          LOOP
            IF (seatlock_expire_booking(v_lapsed)).id IS NOT NULL THEN
              v_expired := v_expired + 1;
            END IF;
          END LOOP;
          EXIT WHEN v_expired = 0;
        END LOOP;
        IF coalesce(cardinality(v_labels), 0) < p_quantity THEN
          RETURN QUERY SELECT 'sold_out', NULL::jsonb,
                              seatlock_units_available(p_event, p_section), NULL::int, v_expired;
          RETURN;
        END IF;

        SELECT greatest(max(fence) + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
          INTO v_token FROM seats WHERE event_id = p_event AND label = ANY(v_labels);
        UPDATE seats SET status = 'held', booking_id = p_booking, fence = v_token,
                         held_until = now() + make_interval(secs => p_ttl_seconds)
         WHERE event_id = p_event AND label = ANY(v_labels) AND status = 'free';
        GET DIAGNOSTICS v_written = ROW_COUNT;
        IF v_written <> p_quantity THEN
          RAISE EXCEPTION 'seatlock_hold_units: % of % units written', v_written, p_quantity;
        END IF;
        INSERT INTO bookings (id, customer_id, event_id, status, seat_labels, amount_cents,
                              currency, expires_at, fence)
        VALUES (p_booking, p_customer, p_event, 'held', v_labels, p_price * p_quantity, p_currency,
                now() + make_interval(secs => p_ttl_seconds), v_token)
        RETURNING * INTO v_booking;
        PERFORM seatlock_record_booking_event(v_booking, 'booking.held',
          'Held ' || p_quantity || ' of ' || p_section || ' (' || array_to_string(v_labels, ', ')
          || ') until ' || seatlock_iso(v_booking.expires_at) || ' (fencing token ' || v_token || ')');
        RETURN QUERY SELECT 'held', seatlock_booking_json(v_booking), NULL::int, NULL::int,
                            v_expired;
      END
      $$`;

/**
 * General admission: a GA section's units are rows of `seats` without a row (row_name NULL), so
 * holding, paying, releasing, expiring, cancelling and the ledger treat them exactly like seats. A
 * GA hold claims the first free units with FOR UPDATE SKIP LOCKED: concurrent buyers take different
 * rows instead of queueing on one counter row.
 */
export class GeneralAdmission1764500000000 implements MigrationInterface {
  name = 'GeneralAdmission1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE seats ALTER COLUMN row_name DROP NOT NULL, ALTER COLUMN seat_number DROP NOT NULL`,
    );
    // Free units in claim order; the partial index is what SKIP LOCKED walks.
    await queryRunner.query(`
      CREATE INDEX seats_free_units_idx ON seats (event_id, section, position)
        WHERE row_name IS NULL AND status = 'free'`);
    await queryRunner.query(`
      CREATE INDEX seats_held_units_idx ON seats (event_id, section, held_until)
        WHERE row_name IS NULL AND status = 'held'`);

    // A GA section's units free to hold now (a lapsed hold's count as free).
    await queryRunner.query(`
      CREATE FUNCTION seatlock_units_available(p_event uuid, p_section text) RETURNS integer
      LANGUAGE sql STABLE AS $$
        SELECT count(*)::int FROM seats
         WHERE event_id = p_event AND section = p_section AND row_name IS NULL
           AND (status = 'free' OR (status = 'held' AND held_until <= now()))
      $$`);

    await queryRunner.query(HOLD_UNITS_V1_SQL);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_hold_units`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_units_available`);
    await queryRunner.query(`DROP INDEX IF EXISTS seats_held_units_idx`);
    await queryRunner.query(`DROP INDEX IF EXISTS seats_free_units_idx`);
    await queryRunner.query(`DELETE FROM seats WHERE row_name IS NULL`);
    await queryRunner.query(
      `ALTER TABLE seats ALTER COLUMN row_name SET NOT NULL, ALTER COLUMN seat_number SET NOT NULL`,
    );
  }
}

import type { MigrationInterface, QueryRunner } from 'typeorm';
import { HOLD_V1_SQL } from './1764200000000-one-statement-hold';

/** The owner's extension of a live hold; superseded by 1764700000000, kept for its down(). */
export const EXTEND_V1_SQL = `
      CREATE FUNCTION seatlock_extend(
        p_booking uuid, p_customer uuid, p_ttl_seconds integer, p_max_lifetime_seconds integer,
        p_max_extensions integer)
      RETURNS TABLE (outcome text, booking jsonb)
      LANGUAGE plpgsql AS $$
      DECLARE
        v bookings;
        v_until timestamptz;
      BEGIN
        SELECT * INTO v FROM bookings WHERE id = p_booking AND customer_id = p_customer FOR UPDATE;
        IF NOT FOUND THEN
          RETURN QUERY SELECT 'not_found', NULL::jsonb;
          RETURN;
        END IF;
        IF v.status = 'held' AND v.expires_at <= now() THEN
          -- Lapsed: it ends now, as the sweeper would end it, and is never revived.
          PERFORM seatlock_expire_booking(p_booking);
          RETURN QUERY SELECT 'not_held', seatlock_booking_json(b) FROM bookings b
                        WHERE b.id = p_booking;
          RETURN;
        END IF;
        IF v.status <> 'held' THEN
          RETURN QUERY SELECT 'not_held', seatlock_booking_json(v);
          RETURN;
        END IF;
        IF v.extensions >= p_max_extensions THEN
          RETURN QUERY SELECT 'max_extensions', seatlock_booking_json(v);
          RETURN;
        END IF;
        v_until := least(now() + make_interval(secs => p_ttl_seconds),
                         v.created_at + make_interval(secs => p_max_lifetime_seconds));
        IF v_until <= v.expires_at THEN
          RETURN QUERY SELECT 'max_lifetime', seatlock_booking_json(v);
          RETURN;
        END IF;
        UPDATE bookings SET expires_at = v_until, extensions = extensions + 1, updated_at = now()
         WHERE id = p_booking RETURNING * INTO v;
        UPDATE seats SET held_until = v_until
         WHERE event_id = v.event_id AND label = ANY(v.seat_labels) AND status = 'held'
           AND booking_id = v.id AND fence = v.fence;
        PERFORM seatlock_record_booking_event(v, 'booking.extended',
          'Hold extended until ' || seatlock_iso(v_until) || ' (extension ' || v.extensions || ' of '
          || p_max_extensions || ')');
        RETURN QUERY SELECT 'extended', seatlock_booking_json(v);
      END
      $$`;

/**
 * On-sale seating: seats know their row and number (the orphan rule needs neighbours), events their
 * orphan policy, bookings how often they were extended. The hold gains the per-customer cap and the
 * orphan rule inside its one statement; the extension is one statement too.
 */
export class OnSaleSeating1764400000000 implements MigrationInterface {
  name = 'OnSaleSeating1764400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE seats ADD COLUMN row_name text, ADD COLUMN seat_number integer`,
    );
    // Labels are the row's letters then the seat's number (A12, AB3): see seat-map.builder.ts.
    await queryRunner.query(`
      UPDATE seats SET row_name = substring(label FROM '^[A-Z]+'),
                       seat_number = substring(label FROM '[0-9]+$')::integer`);
    await queryRunner.query(
      `ALTER TABLE seats ALTER COLUMN row_name SET NOT NULL, ALTER COLUMN seat_number SET NOT NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX seats_event_row_idx ON seats (event_id, row_name, seat_number)`,
    );

    await queryRunner.query(`
      ALTER TABLE events ADD COLUMN orphan_policy text NOT NULL DEFAULT 'off'
        CHECK (orphan_policy IN ('off', 'strict'))`);

    await queryRunner.query(
      `ALTER TABLE bookings ADD COLUMN extensions integer NOT NULL DEFAULT 0`,
    );
    // The cap counts a customer's live bookings for one event.
    await queryRunner.query(`
      CREATE INDEX bookings_customer_event_live_idx ON bookings (customer_id, event_id)
        WHERE status IN ('held', 'confirmed')`);

    // The free seats a hold of p_labels would strand (see docs/on-sale.md, "Orphan rule"): in the
    // rows it touches, a seat free before and after whose two neighbours (or the row's end) are
    // unavailable after it, that had a free neighbour before — unless the run of free seats it sat
    // in is exactly one longer than what the hold takes from that run. NULL when none.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_orphans(p_event uuid, p_labels text[]) RETURNS text[]
      LANGUAGE plpgsql STABLE AS $$
      BEGIN
        -- PL/pgSQL keeps this plan for the session; as a SQL function it was planned every call.
        RETURN (WITH touched AS (
          SELECT DISTINCT row_name FROM seats WHERE event_id = p_event AND label = ANY(p_labels)
        ), row_seats AS (
          SELECT s.label, s.row_name, s.seat_number,
                 (s.status = 'free' OR (s.status = 'held' AND s.held_until <= now())) AS was_free,
                 s.label = ANY(p_labels) AS taking
            FROM seats s JOIN touched t ON t.row_name = s.row_name
           WHERE s.event_id = p_event
        ), runs AS (
          SELECT *, seat_number - row_number() OVER (
                      PARTITION BY row_name, was_free ORDER BY seat_number) AS run
            FROM row_seats
        ), judged AS (
          SELECT label, row_name, seat_number, was_free, taking,
                 count(*) OVER r AS run_length,
                 count(*) FILTER (WHERE taking) OVER r AS run_taken,
                 lag(was_free AND NOT taking) OVER n AS left_free_after,
                 lead(was_free AND NOT taking) OVER n AS right_free_after,
                 lag(was_free) OVER n AS left_free_before,
                 lead(was_free) OVER n AS right_free_before
            FROM runs
          WINDOW r AS (PARTITION BY row_name, was_free, run),
                 n AS (PARTITION BY row_name ORDER BY seat_number)
        )
        SELECT array_agg(label ORDER BY row_name, seat_number) FROM judged
         WHERE was_free AND NOT taking
           AND NOT coalesce(left_free_after, false) AND NOT coalesce(right_free_after, false)
           AND (coalesce(left_free_before, false) OR coalesce(right_free_before, false))
           AND run_length <> run_taken + 1);
      END
      $$`);

    await queryRunner.query(
      `DROP FUNCTION seatlock_hold(uuid, uuid, uuid, text[], bigint, text, bigint, integer)`,
    );
    // outcome: 'held' (booking set); 'unavailable' (taken: seats held or booked by others); 'stale'
    // (newest_fence: PostgreSQL holds a fence at least as new as the token); 'limit' (current: seats
    // this customer already has for the event, p_cap the most allowed); 'orphan' (taken: the seats
    // it would strand). Anything but 'held' writes nothing except the expiry of lapsed holds.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_hold(
        p_booking uuid, p_customer uuid, p_event uuid, p_labels text[], p_amount bigint,
        p_currency text, p_fence bigint, p_ttl_seconds integer,
        p_orphan_check boolean DEFAULT false, p_cap integer DEFAULT NULL)
      RETURNS TABLE (outcome text, booking jsonb, taken text[], newest_fence bigint,
                     expired integer, current_seats integer)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_lapsed uuid;
        v_expired integer := 0;
        v_taken text[];
        v_newest bigint;
        v_current integer;
        v_token bigint;
        v_written integer;
        v_booking bookings;
      BEGIN
        IF p_cap IS NOT NULL THEN
          -- One customer's holds for one event queue here, so two of them cannot both fit the cap.
          PERFORM pg_advisory_xact_lock(hashtextextended(p_customer::text || p_event::text, 0));
        END IF;
        -- Label order: two holds over overlapping seats lock them in the same order, no deadlock.
        IF p_orphan_check THEN
          -- Under the orphan rule, the seats up to two away in the same row too: two holds that
          -- could strand a seat between them queue here, and the second one's check sees the first.
          PERFORM 1 FROM seats s
           WHERE s.event_id = p_event
             AND EXISTS (SELECT 1 FROM seats h
                          WHERE h.event_id = p_event AND h.label = ANY(p_labels)
                            AND h.row_name = s.row_name
                            AND abs(h.seat_number - s.seat_number) <= 2)
           ORDER BY s.label FOR UPDATE;
        ELSE
          PERFORM 1 FROM seats WHERE event_id = p_event AND label = ANY(p_labels)
            ORDER BY label FOR UPDATE;
        END IF;

        -- Lapsed holds on these seats end here, as the sweeper would end them.
        FOR v_lapsed IN
          SELECT DISTINCT booking_id FROM seats WHERE event_id = p_event
             AND label = ANY(p_labels) AND status = 'held' AND held_until <= now()
        LOOP
          IF (seatlock_expire_booking(v_lapsed)).id IS NOT NULL THEN
            v_expired := v_expired + 1;
          END IF;
        END LOOP;
        -- A lapsed seat whose booking is no longer held (e.g. already expired) is simply free.
        UPDATE seats SET status = 'free', booking_id = NULL, held_until = NULL
         WHERE event_id = p_event AND label = ANY(p_labels) AND status = 'held'
           AND held_until <= now();

        SELECT array_agg(label ORDER BY label) FILTER (WHERE status <> 'free'), max(fence)
          INTO v_taken, v_newest
          FROM seats WHERE event_id = p_event AND label = ANY(p_labels);
        IF v_taken IS NOT NULL THEN
          RETURN QUERY SELECT 'unavailable', NULL::jsonb, v_taken, v_newest, v_expired, NULL::int;
          RETURN;
        END IF;

        IF p_cap IS NOT NULL THEN
          SELECT coalesce(sum(cardinality(seat_labels)), 0)::int INTO v_current FROM bookings
           WHERE customer_id = p_customer AND event_id = p_event
             AND status IN ('held', 'confirmed')
             AND NOT (status = 'held' AND expires_at <= now());
          IF v_current + cardinality(p_labels) > p_cap THEN
            RETURN QUERY SELECT 'limit', NULL::jsonb, NULL::text[], v_newest, v_expired, v_current;
            RETURN;
          END IF;
        END IF;

        IF p_orphan_check THEN
          v_taken := seatlock_orphans(p_event, p_labels);
          IF v_taken IS NOT NULL THEN
            RETURN QUERY SELECT 'orphan', NULL::jsonb, v_taken, v_newest, v_expired, NULL::int;
            RETURN;
          END IF;
        END IF;

        -- Without a Redis token PostgreSQL mints one: above every fence here and the clock in µs.
        v_token := COALESCE(p_fence, greatest(v_newest + 1,
                     (extract(epoch FROM clock_timestamp()) * 1000000)::bigint));
        IF v_token <= v_newest THEN
          RETURN QUERY SELECT 'stale', NULL::jsonb, NULL::text[], v_newest, v_expired, NULL::int;
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
        PERFORM seatlock_record_booking_event(v_booking, 'booking.held',
          'Held ' || array_to_string(p_labels, ', ') || ' until '
          || seatlock_iso(v_booking.expires_at) || ' (fencing token ' || v_token || ')');
        RETURN QUERY SELECT 'held', seatlock_booking_json(v_booking), NULL::text[], v_token,
                            v_expired, NULL::int;
      END
      $$`);

    // The owner's extension of a live hold, fenced like every seat write. outcome: 'not_found' (not
    // this customer's), 'extended', or why not: 'not_held' (over, or lapsed: then it expires here,
    // never revived), 'max_extensions', 'max_lifetime' (expires_at cannot move later).
    await queryRunner.query(EXTEND_V1_SQL);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_extend`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_hold`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_orphans`);
    await queryRunner.query(`DROP INDEX IF EXISTS bookings_customer_event_live_idx`);
    await queryRunner.query(`ALTER TABLE bookings DROP COLUMN IF EXISTS extensions`);
    await queryRunner.query(`ALTER TABLE events DROP COLUMN IF EXISTS orphan_policy`);
    await queryRunner.query(`DROP INDEX IF EXISTS seats_event_row_idx`);
    await queryRunner.query(
      `ALTER TABLE seats DROP COLUMN IF EXISTS row_name, DROP COLUMN IF EXISTS seat_number`,
    );
    // The hold as the previous migration wrote it.
    await queryRunner.query(HOLD_V1_SQL);
  }
}

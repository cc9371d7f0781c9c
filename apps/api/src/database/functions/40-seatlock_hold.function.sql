-- The hold of chosen seats, all of it or nothing, in one statement (docs/design.md, step 3): the
-- per-customer cap's advisory lock, the seats locked in label order (and, under the orphan rule,
-- their neighbours up to two away), lapsed holds on them expired, every seat free and the token
-- newer than every stored fence, the cap and the orphan rule, then the seats, the booking, its
-- timeline entry and its outbox row.
-- outcome: 'held' (booking set); 'unavailable' (taken: seats held or booked by others); 'stale'
-- (newest_fence: PostgreSQL holds a fence at least as new as the token); 'limit' (current: seats
-- this customer already has for the event, p_cap the most allowed); 'orphan' (taken: the seats
-- it would strand). Anything but 'held' writes nothing except the expiry of lapsed holds.
-- p_fence NULL (no Redis token): PostgreSQL mints one above every fence here and the clock in µs.
CREATE OR REPLACE FUNCTION seatlock_hold(
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
$$;

-- Holds p_quantity units of a GA section, all or none. outcome: 'held' (booking set), 'sold_out'
-- (available: what was free), 'limit' (current: the customer's seats for the event). The token is
-- PostgreSQL's own: units have no Redis lock (Redis only admits buyers).
-- Fair claims: a SKIP LOCKED claim short of p_quantity gives its rows back at once (a rolled-back
-- subtransaction), a buyer is refused only when too few units are free or lapsed, and one who
-- fits but found them locked by other claimers waits for them in unit order.
CREATE OR REPLACE FUNCTION seatlock_hold_units(
  p_booking uuid, p_customer uuid, p_event uuid, p_section text, p_quantity integer,
  p_price bigint, p_currency text, p_ttl_seconds integer, p_cap integer)
RETURNS TABLE (outcome text, booking jsonb, available integer, current_seats integer,
               expired integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_labels text[];
  v_lapsed uuid;
  v_expired integer := 0;
  v_available integer;
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

  FOR attempt IN 1..3 LOOP
    IF attempt < 3 THEN
      -- The fast claim: units other buyers are claiming right now are skipped, not waited
      -- for. Short of p_quantity, its row locks are given back (the block is rolled back).
      BEGIN
        SELECT array_agg(label ORDER BY position) INTO v_labels FROM (
          SELECT label, position FROM seats
           WHERE event_id = p_event AND section = p_section AND row_name IS NULL
             AND status = 'free'
           ORDER BY position LIMIT p_quantity FOR UPDATE SKIP LOCKED) u;
        IF coalesce(cardinality(v_labels), 0) < p_quantity THEN
          RAISE EXCEPTION USING ERRCODE = 'SL001';
        END IF;
      EXCEPTION WHEN SQLSTATE 'SL001' THEN
        v_labels := NULL;
      END;
    ELSE
      -- Enough units are free but concurrent claimers hold some: wait for them, in unit
      -- order (every waiter locks in the same order), and take what they leave.
      SELECT array_agg(label ORDER BY position) INTO v_labels FROM (
        SELECT label, position FROM seats
         WHERE event_id = p_event AND section = p_section AND row_name IS NULL
           AND status = 'free'
         ORDER BY position LIMIT p_quantity FOR UPDATE) u;
    END IF;
    EXIT WHEN coalesce(cardinality(v_labels), 0) = p_quantity;
    -- Refused only when too few units are free or lapsed, whoever is claiming them.
    v_available := seatlock_units_available(p_event, p_section);
    IF v_available < p_quantity OR attempt = 3 THEN
      RETURN QUERY SELECT 'sold_out', NULL::jsonb, v_available, NULL::int, v_expired;
      RETURN;
    END IF;
    IF attempt = 1 THEN
      -- End lapsed holds in this section (as the sweeper would), so their units are free.
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
    END IF;
  END LOOP;

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
$$;

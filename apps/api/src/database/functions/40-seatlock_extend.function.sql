-- The owner's extension of a live hold, fenced like every seat write. outcome: 'not_found' (not
-- this customer's), 'extended', or why not: 'not_held' (over, or lapsed: then it expires here,
-- never revived), 'max_extensions', 'max_lifetime' (expires_at cannot move later). The clock is
-- read once the booking's row lock is held: an extension that queued behind another one computes
-- from after it, not from its transaction's start.
CREATE OR REPLACE FUNCTION seatlock_extend(
  p_booking uuid, p_customer uuid, p_ttl_seconds integer, p_max_lifetime_seconds integer,
  p_max_extensions integer)
RETURNS TABLE (outcome text, booking jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v bookings;
  v_now timestamptz;
  v_until timestamptz;
BEGIN
  SELECT * INTO v FROM bookings WHERE id = p_booking AND customer_id = p_customer FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found', NULL::jsonb;
    RETURN;
  END IF;
  -- The time once the row is ours: later than any extension written before we got it.
  v_now := clock_timestamp();
  IF v.status = 'held' AND v.expires_at <= v_now THEN
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
  v_until := least(v_now + make_interval(secs => p_ttl_seconds),
                   v.created_at + make_interval(secs => p_max_lifetime_seconds));
  IF v_until <= v.expires_at THEN
    RETURN QUERY SELECT 'max_lifetime', seatlock_booking_json(v);
    RETURN;
  END IF;
  UPDATE bookings SET expires_at = v_until, extensions = extensions + 1, updated_at = v_now
   WHERE id = p_booking RETURNING * INTO v;
  UPDATE seats SET held_until = v_until
   WHERE event_id = v.event_id AND label = ANY(v.seat_labels) AND status = 'held'
     AND booking_id = v.id AND fence = v.fence;
  PERFORM seatlock_record_booking_event(v, 'booking.extended',
    'Hold extended until ' || seatlock_iso(v_until) || ' (extension ' || v.extensions || ' of '
    || p_max_extensions || ')');
  RETURN QUERY SELECT 'extended', seatlock_booking_json(v);
END
$$;

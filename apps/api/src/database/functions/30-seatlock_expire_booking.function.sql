-- held -> expired once the TTL has passed; frees the seats it still holds by fence. Answers the
-- expired booking, or NULL when it was not a lapsed hold. The one expiry: the sweeper, the hold,
-- release, extension and the confirm all end a lapsed hold through it.
CREATE OR REPLACE FUNCTION seatlock_expire_booking(p_booking uuid) RETURNS bookings
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
$$;

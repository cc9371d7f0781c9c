-- The customer's DELETE of a hold. outcome: 'not_found' (not this customer's), 'released',
-- 'expired' (it had lapsed), 'unchanged' (already over), 'confirmed' (a paid booking: its
-- cancellation involves the payment and runs as its own transaction). booking: as the API shows it.
CREATE OR REPLACE FUNCTION seatlock_release(p_booking uuid, p_customer uuid)
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
$$;

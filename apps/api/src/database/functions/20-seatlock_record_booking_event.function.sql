-- A fact about a booking: its timeline entry and its outbox message (the booking as the API shows
-- it, plus p_extra), written together in the caller's statement. The booking module's published
-- write: whichever statement changes a booking calls it, so the change, its timeline and its
-- notification commit together.
CREATE OR REPLACE FUNCTION seatlock_record_booking_event(
  b bookings, p_type text, p_detail text, p_extra jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO booking_timeline (booking_id, event_id, type, detail)
  VALUES (b.id, b.event_id, p_type, p_detail);
  PERFORM seatlock_outbox_enqueue(p_type, b.customer_id, b.id,
            jsonb_build_object('booking', seatlock_booking_json(b)) || p_extra);
END
$$;

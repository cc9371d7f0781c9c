-- The fenced confirm, with the authorization that led to it recorded in the same statement
-- (p_status/p_intent, when given). Only while the payment's next step is still p_expected:
-- otherwise outcome 'moved_on' and nothing changes. With no expected step (the reconciler asking
-- the gateway about an asynchronous card) only a payment still pending: a captured one owes
-- nothing too and must not be taken back (docs/model.md, F2). 'confirmed': booking, seats,
-- timeline and outbox written, the payment owes its capture. 'seat_lost': the hold is gone (a
-- lapsed one is expired here), the payment owes a void or a refund and says why.
CREATE OR REPLACE FUNCTION seatlock_payment_confirm(
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
  -- No expected step (the reconciler asking the gateway about an asynchronous card): only a
  -- payment still undecided. A captured one also owes nothing, and must not be taken back.
  IF p.next_action IS DISTINCT FROM p_expected
     OR (p_expected IS NULL AND p.status IS DISTINCT FROM 'pending') THEN
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
$$;

-- POST /bookings/{id}/payments, first statement: claim the idempotency key, check the booking is
-- this customer's and payable, and create the payment (or resume it: same gateway key).
-- claim: as seatlock_idempotency_claim; booking NULL: not this customer's; payable false: the
-- booking is not held (booking_status says what it is); else payment is the row.
CREATE OR REPLACE FUNCTION seatlock_payment_start(
  p_customer uuid, p_booking uuid, p_key text, p_fingerprint text, p_lease_ms integer,
  p_retention_hours integer, p_payment uuid, p_method text, p_gateway_key text)
RETURNS TABLE (claim text, response_status integer, response_body text, booking jsonb,
               booking_status text, payment jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  c record;
  b bookings;
  p payments;
BEGIN
  SELECT * INTO c FROM seatlock_idempotency_claim(p_customer, p_key, p_fingerprint,
                                                  p_lease_ms, p_retention_hours);
  IF c.outcome <> 'claimed' THEN
    RETURN QUERY SELECT c.outcome, c.response_status, c.response_body, NULL::jsonb,
                        NULL::text, NULL::jsonb;
    RETURN;
  END IF;
  SELECT * INTO b FROM bookings WHERE id = p_booking AND customer_id = p_customer;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'claimed', NULL::integer, NULL::text, NULL::jsonb, NULL::text,
                        NULL::jsonb;
    RETURN;
  END IF;
  IF b.status <> 'held' OR b.expires_at <= now() THEN
    RETURN QUERY SELECT 'claimed', NULL::integer, NULL::text, seatlock_booking_json(b),
                        CASE WHEN b.status = 'held' THEN 'expired' ELSE b.status END,
                        NULL::jsonb;
    RETURN;
  END IF;
  INSERT INTO payments (id, booking_id, customer_id, status, next_action, amount_cents,
                        currency, payment_method, fence, gateway_idempotency_key)
  VALUES (p_payment, b.id, b.customer_id, 'pending', 'authorize', b.amount_cents,
          b.currency, p_method, b.fence, p_gateway_key)
  ON CONFLICT (gateway_idempotency_key) DO UPDATE SET attempts = payments.attempts + 1
  RETURNING * INTO p;
  RETURN QUERY SELECT 'claimed', NULL::integer, NULL::text, seatlock_booking_json(b),
                      b.status, seatlock_payment_row(p);
END
$$;

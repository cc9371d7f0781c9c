-- A payment row as the payment repository reads it: amounts and the fence as decimal strings
-- (64-bit), updated_at with its microseconds (the version a conditional step compares).
CREATE OR REPLACE FUNCTION seatlock_payment_row(p payments) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT to_jsonb(p) || jsonb_build_object(
    'amount_cents', p.amount_cents::text, 'refunded_cents', p.refunded_cents::text,
    'fence', p.fence::text, 'created_at', seatlock_iso(p.created_at),
    'updated_at', p.updated_at::text)
$$;

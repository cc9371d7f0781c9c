-- Stores a claimed request's answer; false when the claim is no longer this request's.
CREATE OR REPLACE FUNCTION seatlock_idempotency_complete(
  p_customer uuid, p_key text, p_status integer, p_body text)
RETURNS boolean LANGUAGE sql AS $$
  WITH done AS (
    UPDATE idempotency_keys SET state = 'completed', response_status = p_status,
                                response_body = p_body
     WHERE customer_id = p_customer AND key = p_key AND state = 'in_flight'
    RETURNING 1)
  SELECT EXISTS (SELECT 1 FROM done)
$$;

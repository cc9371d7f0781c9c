-- Claims an idempotency key, or says why not: 'claimed', 'completed' (with the stored answer),
-- 'in_flight', 'mismatch' (the key was used for another request). A key past its retention, or an
-- in-flight one whose lease ran out (its process crashed) with the same fingerprint, is taken over.
-- The lookup after a lost INSERT runs with a new snapshot, so it sees the row a concurrent claim
-- just committed.
CREATE OR REPLACE FUNCTION seatlock_idempotency_claim(
  p_customer uuid, p_key text, p_fingerprint text, p_lease_ms integer,
  p_retention_hours integer)
RETURNS TABLE (outcome text, response_status integer, response_body text)
LANGUAGE plpgsql AS $$
DECLARE
  v idempotency_keys;
BEGIN
  INSERT INTO idempotency_keys AS k
    (customer_id, key, fingerprint, state, locked_until, expires_at)
  VALUES (p_customer, p_key, p_fingerprint, 'in_flight',
          now() + p_lease_ms * interval '1 millisecond',
          now() + p_retention_hours * interval '1 hour')
  ON CONFLICT (customer_id, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', response_status = NULL,
        response_body = NULL, locked_until = EXCLUDED.locked_until,
        expires_at = EXCLUDED.expires_at, created_at = now()
    WHERE k.expires_at <= now()
       OR (k.state = 'in_flight' AND k.locked_until <= now()
           AND k.fingerprint = EXCLUDED.fingerprint);
  IF FOUND THEN
    RETURN QUERY SELECT 'claimed', NULL::integer, NULL::text;
    RETURN;
  END IF;
  SELECT * INTO v FROM idempotency_keys WHERE customer_id = p_customer AND key = p_key;
  IF NOT FOUND OR v.state = 'in_flight' AND v.fingerprint = p_fingerprint THEN
    -- Gone between the two statements (purged) counts as in flight: the client retries.
    RETURN QUERY SELECT 'in_flight', NULL::integer, NULL::text;
  ELSIF v.fingerprint <> p_fingerprint THEN
    RETURN QUERY SELECT 'mismatch', NULL::integer, NULL::text;
  ELSE
    RETURN QUERY SELECT 'completed', v.response_status, v.response_body;
  END IF;
END
$$;

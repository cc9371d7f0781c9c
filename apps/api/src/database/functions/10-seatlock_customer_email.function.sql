-- The customer module's answer to "where does this customer's email go": the address as it is now,
-- or no row for a customer that does not exist or has a blank one. Other modules read a customer's
-- address only through this (the email channel's fan-out). A set-returning LANGUAGE sql STABLE
-- function, so PostgreSQL inlines it into the caller's join: no cost over reading customers there.
CREATE OR REPLACE FUNCTION seatlock_customer_email(p_customer uuid) RETURNS SETOF text
ROWS 1 LANGUAGE sql STABLE AS $$
  SELECT email FROM customers WHERE id = p_customer AND btrim(email) <> ''
$$;

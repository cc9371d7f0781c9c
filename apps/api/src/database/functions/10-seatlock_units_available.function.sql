-- A GA section's units free to hold now (a lapsed hold's count as free): what seeds the Redis
-- admission count and what a sold-out answer reports.
CREATE OR REPLACE FUNCTION seatlock_units_available(p_event uuid, p_section text) RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT count(*)::int FROM seats
   WHERE event_id = p_event AND section = p_section AND row_name IS NULL
     AND (status = 'free' OR (status = 'held' AND held_until <= now()))
$$;

-- A timestamp as the API writes it: ISO 8601 in UTC with milliseconds.
CREATE OR REPLACE FUNCTION seatlock_iso(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

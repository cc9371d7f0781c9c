-- Each seated seat's status as GET /events/{id}/seats shows it (a lapsed hold is free), one letter
-- per seat (f, h, b) in seat order: the seat list and the stream's snapshot read it.
CREATE OR REPLACE FUNCTION seatlock_seat_statuses(p_event uuid) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT coalesce(string_agg(left(CASE WHEN status = 'held' AND held_until <= now()
                                       THEN 'free' ELSE status END, 1), ''
                             ORDER BY position), '')
    FROM seats WHERE event_id = p_event AND row_name IS NOT NULL
$$;

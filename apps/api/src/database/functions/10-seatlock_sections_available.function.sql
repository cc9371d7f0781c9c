-- Every section of an event with the units free to hold now (a lapsed hold counts as free), in
-- section order: what GET /events/{id} shows as available, and the seat stream's section counts.
CREATE OR REPLACE FUNCTION seatlock_sections_available(p_event uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('name', section, 'available', free)
                            ORDER BY first_position), '[]'::jsonb)
    FROM (SELECT section, min(position) AS first_position,
                 count(*) FILTER (WHERE status = 'free'
                                     OR (status = 'held' AND held_until <= now()))::int AS free
            FROM seats WHERE event_id = p_event GROUP BY section) s
$$;

-- The orphan rule (docs/on-sale.md): the free seats a hold of p_labels would strand, NULL when
-- none.
-- In the rows it touches, a seat free before and after whose two neighbours (or the row's end) are
-- unavailable after it, that had a free neighbour before -- unless the run of free seats it sat in
-- is exactly one longer than what the hold takes from that run.
CREATE OR REPLACE FUNCTION seatlock_orphans(p_event uuid, p_labels text[]) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
  -- PL/pgSQL keeps this plan for the session; as a SQL function it was planned every call.
  RETURN (WITH touched AS (
    SELECT DISTINCT row_name FROM seats WHERE event_id = p_event AND label = ANY(p_labels)
  ), row_seats AS (
    SELECT s.label, s.row_name, s.seat_number,
           (s.status = 'free' OR (s.status = 'held' AND s.held_until <= now())) AS was_free,
           s.label = ANY(p_labels) AS taking
      FROM seats s JOIN touched t ON t.row_name = s.row_name
     WHERE s.event_id = p_event
  ), runs AS (
    SELECT *, seat_number - row_number() OVER (
                PARTITION BY row_name, was_free ORDER BY seat_number) AS run
      FROM row_seats
  ), judged AS (
    SELECT label, row_name, seat_number, was_free, taking,
           count(*) OVER r AS run_length,
           count(*) FILTER (WHERE taking) OVER r AS run_taken,
           lag(was_free AND NOT taking) OVER n AS left_free_after,
           lead(was_free AND NOT taking) OVER n AS right_free_after,
           lag(was_free) OVER n AS left_free_before,
           lead(was_free) OVER n AS right_free_before
      FROM runs
    WINDOW r AS (PARTITION BY row_name, was_free, run),
           n AS (PARTITION BY row_name ORDER BY seat_number)
  )
  SELECT array_agg(label ORDER BY row_name, seat_number) FROM judged
   WHERE was_free AND NOT taking
     AND NOT coalesce(left_free_after, false) AND NOT coalesce(right_free_after, false)
     AND (coalesce(left_free_before, false) OR coalesce(right_free_before, false))
     AND run_length <> run_taken + 1);
END
$$;

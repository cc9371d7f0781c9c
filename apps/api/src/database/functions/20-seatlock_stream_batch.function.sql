-- Takes up to p_limit seat changes, oldest first, as numbered messages: one per (event,
-- transaction), seq counting on from seat_streams. Rows are deleted as they are returned. The
-- transaction-level advisory lock makes batches take turns, even when every instance drains
-- (Redis down), so each seat's changes come out in commit order.
CREATE OR REPLACE FUNCTION seatlock_stream_batch(p_limit integer)
RETURNS TABLE (event_id uuid, seq bigint, changes jsonb, sections jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('seatlock_stream_batch', 0));
  RETURN QUERY
  WITH taken AS (
    DELETE FROM seat_changes c
     WHERE c.id IN (SELECT id FROM seat_changes ORDER BY id LIMIT p_limit)
    RETURNING c.id, c.event_id, c.xact, c.changes
  ), messages AS (
    SELECT t.event_id, min(t.id) AS first_id,
           jsonb_agg(change ORDER BY t.id, ordinal) AS changes
      FROM taken t, jsonb_array_elements(t.changes) WITH ORDINALITY AS e(change, ordinal)
     GROUP BY t.event_id, t.xact
  ), numbered AS (
    SELECT m.*, row_number() OVER (PARTITION BY m.event_id ORDER BY m.first_id) AS n,
           count(*) OVER (PARTITION BY m.event_id) AS total
      FROM messages m
  ), counted AS (
    INSERT INTO seat_streams AS s (event_id, seq)
    SELECT DISTINCT n.event_id, n.total FROM numbered n
      JOIN events e ON e.id = n.event_id
    ON CONFLICT ON CONSTRAINT seat_streams_pkey DO UPDATE SET seq = s.seq + EXCLUDED.seq
    RETURNING s.event_id, s.seq
  )
  SELECT n.event_id, c.seq - n.total + n.n, n.changes,
         seatlock_sections_available(n.event_id)
    FROM numbered n JOIN counted c ON c.event_id = n.event_id
   ORDER BY n.event_id, n.n;
END
$$;

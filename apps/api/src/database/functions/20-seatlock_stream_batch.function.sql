-- Takes up to p_limit seat changes, oldest first, as numbered messages: one per (event,
-- transaction), seq counting on from seat_streams, each with its event's section counts after it.
-- Rows are deleted as they are returned. The transaction-level advisory lock makes batches take
-- turns, even when every instance drains (Redis down), so each seat's changes come out in commit
-- order.
--
-- The counts are kept, not recounted: seat_streams.sections holds them as of seq, and each change
-- moves its section's count by its `free` (-1, 0, +1). So a message costs the same on a 1,000- and
-- a 50,000-seat event. An event's first batch counts its seats once: the free seats minus what
-- every change still waiting would add, read in the same snapshot as the rows taken, which makes
-- the base the state just before the oldest waiting change. A hold counts as held here until the
-- sweeper expires it (GET /events/{id} counts a lapsed hold as free at once).
CREATE OR REPLACE FUNCTION seatlock_stream_batch(p_limit integer)
RETURNS TABLE (event_id uuid, seq bigint, changes jsonb, sections jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_messages jsonb;
  v_message jsonb;
  v_change jsonb;
  v_event uuid;
  v_seq bigint;
  v_names text[];
  v_counts int[];
  v_sections jsonb;
  v_at int;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('seatlock_stream_batch', 0));

  WITH taken AS (
    DELETE FROM seat_changes c
     WHERE c.id IN (SELECT id FROM seat_changes ORDER BY id LIMIT p_limit)
    RETURNING c.id, c.event_id, c.xact, c.changes
  ), counted AS (
    -- Every CTE reads the snapshot from before the DELETE: the taken rows still count as waiting.
    INSERT INTO seat_streams AS s (event_id, seq, sections)
    SELECT f.event_id, 0,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('name', st.section,
                                                         'available', st.free - coalesce(w.free, 0))
                                      ORDER BY st.first_position), '[]'::jsonb)
              FROM (SELECT section, min(position) AS first_position,
                           count(*) FILTER (WHERE status = 'free')::int AS free
                      FROM seats WHERE seats.event_id = f.event_id GROUP BY section) st
              LEFT JOIN (SELECT ch->>'section' AS section, sum((ch->>'free')::int)::int AS free
                           FROM seat_changes sc, jsonb_array_elements(sc.changes) ch
                          WHERE sc.event_id = f.event_id GROUP BY 1) w ON w.section = st.section)
      FROM (SELECT DISTINCT t.event_id FROM taken t) f
      JOIN events e ON e.id = f.event_id
     WHERE NOT EXISTS (SELECT 1 FROM seat_streams k
                        WHERE k.event_id = f.event_id AND k.sections IS NOT NULL)
    ON CONFLICT ON CONSTRAINT seat_streams_pkey DO UPDATE SET sections = EXCLUDED.sections
  ), messages AS (
    SELECT t.event_id, min(t.id) AS first_id, jsonb_agg(ch ORDER BY t.id, o) AS changes
      FROM taken t, jsonb_array_elements(t.changes) WITH ORDINALITY AS e(ch, o)
     GROUP BY t.event_id, t.xact
  )
  SELECT coalesce(jsonb_agg(jsonb_build_object('event', m.event_id, 'changes', m.changes)
                            ORDER BY m.event_id, m.first_id), '[]'::jsonb)
    INTO v_messages
    FROM messages m JOIN events e ON e.id = m.event_id;

  FOR v_message IN SELECT value FROM jsonb_array_elements(v_messages) LOOP
    IF v_event IS DISTINCT FROM (v_message->>'event')::uuid THEN
      IF v_event IS NOT NULL THEN
        UPDATE seat_streams SET seq = v_seq, sections = v_sections WHERE event_id = v_event;
      END IF;
      v_event := (v_message->>'event')::uuid;
      SELECT s.seq, s.sections INTO v_seq, v_sections FROM seat_streams s WHERE s.event_id = v_event;
      SELECT coalesce(array_agg(x->>'name' ORDER BY o), '{}'),
             coalesce(array_agg((x->>'available')::int ORDER BY o), '{}')
        INTO v_names, v_counts
        FROM jsonb_array_elements(v_sections) WITH ORDINALITY AS a(x, o);
    END IF;

    FOR v_change IN SELECT value FROM jsonb_array_elements(v_message->'changes') LOOP
      v_at := array_position(v_names, v_change->>'section');
      IF v_at IS NOT NULL THEN
        v_counts[v_at] := v_counts[v_at] + coalesce((v_change->>'free')::int, 0);
      END IF;
    END LOOP;

    v_seq := v_seq + 1;
    SELECT coalesce(jsonb_agg(jsonb_build_object('name', v_names[k], 'available', v_counts[k])
                              ORDER BY k), '[]'::jsonb)
      INTO v_sections
      FROM generate_subscripts(v_names, 1) AS k;
    event_id := v_event;
    seq := v_seq;
    changes := v_message->'changes';
    sections := v_sections;
    RETURN NEXT;
  END LOOP;

  IF v_event IS NOT NULL THEN
    UPDATE seat_streams SET seq = v_seq, sections = v_sections WHERE event_id = v_event;
  END IF;
END
$$;

-- The live seat stream's source: every statement that changes seat statuses (whichever path: hold,
-- release, expiry, confirm, cancel, GA units) records them as one seat_changes row per event, in
-- the same transaction, so nothing committed is missed and nothing rolled back is shown.
-- changes: [{label, status, unit, section, free}] in seat order; unit = a GA unit (no row), shown
-- only by its section's count; free = what the change does to its section's free count (-1, 0,
-- +1), so the stream moves its kept counts instead of recounting the event. A change to a seat
-- waits for the previous change's commit (the row lock), so its row's id is larger:
-- seatlock_stream_batch relies on that order. The notification (one per transaction, whatever
-- the statements) wakes the stream's publisher at commit: no polling.
CREATE OR REPLACE FUNCTION seatlock_record_seat_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO seat_changes (event_id, changes)
  SELECT n.event_id,
         jsonb_agg(jsonb_build_object('label', n.label, 'status', n.status,
                                      'unit', n.row_name IS NULL, 'section', n.section,
                                      'free', (n.status = 'free')::int - (o.status = 'free')::int)
                   ORDER BY n.position)
    FROM new_seats n JOIN old_seats o ON o.event_id = n.event_id AND o.label = n.label
   WHERE o.status <> n.status
   GROUP BY n.event_id;
  IF FOUND THEN
    PERFORM pg_notify('seat_changes', '');
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER seats_record_changes AFTER UPDATE ON seats
  REFERENCING OLD TABLE AS old_seats NEW TABLE AS new_seats
  FOR EACH STATEMENT EXECUTE FUNCTION seatlock_record_seat_changes();

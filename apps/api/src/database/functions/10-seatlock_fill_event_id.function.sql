-- Fills event_id from the row's booking when an insert leaves it out (the triggers
-- booking_timeline_event_id and payments_event_id): the tables written per booking carry the
-- booking's event, so they can live on the event's shard (docs/scaling.md).
CREATE OR REPLACE FUNCTION seatlock_fill_event_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  SELECT event_id INTO NEW.event_id FROM bookings WHERE id = NEW.booking_id;
  RETURN NEW;
END
$$;

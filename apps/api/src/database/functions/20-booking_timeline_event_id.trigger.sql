-- A timeline row inserted without its event gets it from its booking (seatlock_fill_event_id).
CREATE OR REPLACE TRIGGER booking_timeline_event_id BEFORE INSERT ON booking_timeline
  FOR EACH ROW WHEN (NEW.event_id IS NULL)
  EXECUTE FUNCTION seatlock_fill_event_id();

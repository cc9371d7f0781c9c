-- The notification module's one way in: an outbox message, written in the caller's statement, so
-- it commits (or rolls back) with the change it announces.
CREATE OR REPLACE FUNCTION seatlock_outbox_enqueue(
  p_topic text, p_customer uuid, p_aggregate uuid, p_payload jsonb)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  VALUES (gen_random_uuid(), p_topic, p_customer, p_aggregate, p_payload)
$$;
